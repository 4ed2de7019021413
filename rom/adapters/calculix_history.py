"""Time histories of CalculiX decks: ccx 2.20's rules for values given in steps, for many keys at once.

A :class:`StepTable` holds, per step, the values given to keys (nodes, faces, dofs) and their amplitudes;
:func:`evaluate` gives their values at any total times, vectorized over the keys (see its docstring for
the rules, each checked on ccx runs in ``tests/test_calculix_import.py``).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Amplitude", "StepTable", "Step", "evaluate"]


@dataclass
class Amplitude:
    """A ccx ``*AMPLITUDE``: ``times``, ``values`` ``(m,)``; ``total``: in total time (else step time)."""

    name: str
    times: np.ndarray
    values: np.ndarray
    total: bool

    def __call__(self, t: np.ndarray | float) -> np.ndarray:
        return np.interp(t, self.times, self.values)


class StepTable:
    """Histories of ``n`` keys over the steps: per step, the value at its end and an amplitude (or a ramp).

    ``set(step, keys, values, amplitude)`` defines keys in a step (later steps keep their end values);
    ``clear(step)`` is ``OP=NEW`` (the keys of this table not set again in the step are removed). With
    ``accumulate`` (concentrated and distributed loads), values given to one key more than once in a step
    add up, as ccx 2.20 sums them (two lines or cards naming the same node dof or face, or a set listing
    it twice; checked on ccx runs); otherwise (boundary values, temperatures) the last one holds.
    """

    def __init__(self, initial: np.ndarray | None = None, accumulate: bool = False,
                 keep_amplitudes: bool = False) -> None:
        self.initial = None if initial is None else np.asarray(initial, float)
        self.accumulate = accumulate
        #: a value not given again in a later step keeps following its step-time amplitude too (ccx's
        #: temperatures; loads and boundary values keep only total-time amplitudes, see evaluate)
        self.keep_amplitudes = keep_amplitudes
        self.keys: dict = {}
        self.entries: list[tuple[int, str, np.ndarray, np.ndarray, str | None]] = []  # (step, op, idx, v, amp)
        self.carded: set[int] = set()  # steps with a card of this table (ccx: OP=NEW acts on a step's first only)
        self.cleared: dict[int, object] = {}  # step -> the card that cleared the table (OP=NEW)
        # the latest step's keys -> the amplitude they were first set with (other_amplitude in time linear in the
        # keys asked, not in the step's lines so far)
        self._amplitude_of: tuple[int, dict] = (-2, {})

    def index(self, key) -> int:
        return self.keys.setdefault(key, len(self.keys))

    def set(self, step: int, keys: np.ndarray, values: np.ndarray, amplitude: str | None) -> None:
        self.entries.append((step, "set", np.asarray(keys, np.int64), np.asarray(values, float), amplitude))
        if self._amplitude_of[0] != step:
            self._amplitude_of = (step, {})
        first = self._amplitude_of[1]
        first.update({k: amplitude for k in np.asarray(keys, np.int64).tolist() if k not in first})

    def clear(self, step: int, card: object = None) -> None:
        self.entries.append((step, "clear", np.zeros(0, np.int64), np.zeros(0), None))
        self.cleared[step] = card

    def other_amplitude(self, step: int, keys: np.ndarray, amplitude: str | None) -> np.ndarray:
        """Which of ``keys`` ``(m,)`` were given earlier in ``step`` with another amplitude (a bool mask): ccx
        refuses to add such values."""
        keys = np.asarray(keys, np.int64)
        if self._amplitude_of[0] == step:  # (each key holds one amplitude in a step: refused otherwise)
            first = self._amplitude_of[1]
            return np.array([k in first and first[k] != amplitude for k in keys.tolist()], bool)
        out = np.zeros(len(keys), bool)
        for s, op, idx, _, amp in self.entries:
            if s == step and op == "set" and amp != amplitude:
                out |= np.isin(keys, idx)
        return out

    @property
    def size(self) -> int:
        return len(self.keys) if self.initial is None else len(self.initial)

    def arrays(self, n_steps: int, amplitudes: list[str]) -> tuple[np.ndarray, ...]:
        """``initial (n,)`` and, per step ``(n_steps, n)``: the end ``values`` and ``amplitude`` index (-1:
        ramp) of the keys ``defined`` in the step, and the keys ``removed`` by ``OP=NEW`` (not defined again)."""
        n = self.size
        init = np.zeros(n) if self.initial is None else self.initial
        values = np.zeros((n_steps, n))
        amps = np.full((n_steps, n), -1, np.int64)
        defined = np.zeros((n_steps, n), bool)
        removed = np.zeros((n_steps, n), bool)
        for s, op, idx, v, amp in self.entries:
            if op == "clear":
                removed[s] = True
                defined[s] = False
            else:
                if self.accumulate:  # (a key given again in the step adds; duplicates within idx too)
                    values[s, idx] = np.where(defined[s, idx], values[s, idx], 0.0)
                    np.add.at(values[s], idx, v)
                else:
                    values[s, idx] = v
                amps[s, idx] = -1 if amp is None else amplitudes.index(amp)
                defined[s, idx] = True
                removed[s, idx] = False
        return init, values, amps, defined, removed


@dataclass
class Step:
    number: int  # 1-based
    start: float  # total time at the start
    end: float  # total time at the end
    card: object  # the *STEP card
    #: ccx ramps new values over a *STATIC step and applies them at once in a *VISCO step
    ramp: bool = True
    procedure: object | None = None  # the *STATIC / *VISCO card


def evaluate(table: StepTable, steps: list[Step], amplitudes: dict[str, Amplitude],
             times: np.ndarray) -> np.ndarray:
    """``(n_times, n_keys)`` values of the table's keys at total ``times``.

    ccx 2.20's rules (checked on ccx runs): a key defined in a step without amplitude ramps linearly from
    its value at the end of the previous step (also after ``OP=NEW``) in a ``*STATIC`` step, and takes its
    new value at once in a ``*VISCO`` step; with an amplitude it is ``value *
    A(step or total time)``; a key not defined in a step keeps its value at the end of the previous step,
    unless its amplitude is in total time, which goes on (``value * A(total time)``; for a table with
    ``keep_amplitudes``, the temperatures, a step-time amplitude goes on too, ``value * A(step time)`` of
    the later step); a key removed by ``OP=NEW`` is 0 from the step's start."""
    names = list(amplitudes)
    init, values, amps, defined, removed = table.arrays(len(steps), names)
    n = table.size
    ends = np.zeros((len(steps) + 1, n))
    ends[0] = init
    # the amplitude (index, -1: none) and value a key not given again in a step goes on with
    keeps = np.array([amplitudes[a].total or table.keep_amplitudes for a in names] + [False])
    carry_amp = np.full((len(steps), n), -1, np.int64)
    carry_val = np.zeros((len(steps), n))
    last_amp, last_val = np.full(n, -1, np.int64), np.zeros(n)
    for s in range(len(steps)):
        last_amp = np.where(defined[s], amps[s], np.where(removed[s], -1, last_amp))
        last_val = np.where(defined[s], values[s], last_val)
        goes_on = ~defined[s] & keeps[last_amp]  # (index -1: the False appended to keeps)
        carry_amp[s] = np.where(goes_on, last_amp, -1)
        carry_val[s] = last_val

    def at(s: int, t: float) -> np.ndarray:
        step = steps[s]
        frac = 1.0 if step.end <= step.start or not step.ramp else (t - step.start) / (step.end - step.start)
        start = np.where(removed[s], 0.0, ends[s])
        end = np.where(defined[s], values[s], start)
        out = start + (end - start) * frac
        for a in np.unique(amps[s][defined[s] & (amps[s] >= 0)]):
            amp = amplitudes[names[a]]
            m = defined[s] & (amps[s] == a)
            out[m] = values[s][m] * float(amp(t if amp.total else t - step.start))
        for a in np.unique(carry_amp[s][carry_amp[s] >= 0]):
            amp = amplitudes[names[a]]
            m = carry_amp[s] == a
            out[m] = carry_val[s][m] * float(amp(t if amp.total else t - step.start))
        return out

    for s in range(len(steps)):
        ends[s + 1] = at(s, steps[s].end)
    result = np.empty((len(times), n))
    starts = np.array([s.start for s in steps])
    for i, t in enumerate(np.asarray(times, float)):
        if not steps or t <= steps[0].start:
            result[i] = init
            continue
        s = min(int(np.searchsorted(starts, t, side="left")) - 1, len(steps) - 1)
        result[i] = at(s, t)
    return result
