"""Which local model of a dictionary answers a loading: loading features and a multinomial logistic classifier
stored as plain arrays (a model file is uploaded by users: it holds numbers only, never pickled code).

Features of a loading (:class:`LoadingFeatures`), in this order:

* the temperatures at ``n_s`` sensor points at the loading time ``t*`` where the sensors' field departs most
  from the initial one (``t* = argmax_t ||T_s(t) - T_s(t_0)||``): ``(n_s,)`` [temperature unit];
* the peak (value of largest magnitude) of each pressure amplitude, surfaces in ``surfaces`` order (0 when
  absent) [stress unit];
* the peak rotation speed when the family has a centrifugal load; the gravity vector (3) when it has one.

Classifier (:class:`LogisticClassifier`): standardized features ``z = (f - mean) / scale``, logits ``W z + b``,
probabilities by softmax (Daniel et al., ROM-net: a classifier maps the loading to a local reduced model).
Trained offline with scikit-learn (:mod:`structrom.rom.offline.dictionary`); evaluated here with numpy only.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from structrom.rom.loading import Loading, LoadingError, NodalTemperature
from structrom.rom.online.errors import ModelDataError
from structrom.rom.online.schema import peak


@dataclass
class LoadingFeatures:
    """``sensor_coordinates`` ``(n_s, 3)``; ``sensor_nodes`` ``(n_s,)`` their mesh nodes (for nodal temperature
    fields given on the whole mesh of ``n_mesh_nodes`` nodes); ``surfaces``: pressure surfaces in feature
    order; ``centrifugal``, ``gravity``: whether those features are present."""

    sensor_coordinates: np.ndarray
    sensor_nodes: np.ndarray
    n_mesh_nodes: int
    surfaces: list[str]
    centrifugal: bool = False
    gravity: bool = False

    @property
    def names(self) -> list[str]:
        out = [f"temperature[sensor {i}]" for i in range(len(self.sensor_nodes))]
        out += [f"pressure.{s} (peak)" for s in self.surfaces]
        out += ["centrifugal.omega (peak)"] * self.centrifugal + [f"gravity.{c}" for c in "xyz" if self.gravity]
        return out

    def sensor_temperatures(self, loading: Loading) -> np.ndarray:
        """``(n_times, n_s)`` temperatures at the sensors at every time of the loading."""
        temp = loading.temperature
        if isinstance(temp, NodalTemperature):
            values = np.asarray(temp.values)
            if values.shape[1] != self.n_mesh_nodes:
                raise LoadingError(f"loading.temperature: a nodal field for a dictionary model must give all "
                                   f"{self.n_mesh_nodes} mesh nodes, got {values.shape[1]} values per time")
            temp = NodalTemperature(np.asarray(temp.times, float), values[:, self.sensor_nodes])
            loading = Loading(loading.times, temp)
            return loading.nodal_temperatures(loading.times, np.zeros((len(self.sensor_nodes), 3)))
        return loading.nodal_temperatures(loading.times, self.sensor_coordinates)

    def __call__(self, loading: Loading) -> np.ndarray:
        """``(n_features,)`` features of one loading."""
        T = self.sensor_temperatures(loading)
        t_star = int(np.argmax(np.linalg.norm(T - T[0], axis=1)))
        t0, t1 = float(loading.times[0]), float(loading.times[-1])
        out = [T[t_star]]
        out.append(np.array([peak(loading.pressures[s], t0, t1) if s in loading.pressures else 0.0
                             for s in self.surfaces]))
        if self.centrifugal:
            c = loading.centrifugal
            out.append(np.array([peak(c.omega, t0, t1) if c is not None else 0.0]))
        if self.gravity:
            out.append(np.zeros(3) if loading.gravity is None else np.asarray(loading.gravity, float))
        f = np.concatenate(out)
        if not np.all(np.isfinite(f)):
            raise LoadingError("the loading's features (sensor temperatures, pressure peaks) are not finite")
        return f


@dataclass
class LogisticClassifier:
    """``p = softmax(W (f - mean) / scale + b)``: ``coef`` ``W`` ``(k, n_f)``, ``intercept`` ``(k,)``,
    ``mean``, ``scale`` ``(n_f,)``; class ``i`` is local model ``i`` of the dictionary."""

    coef: np.ndarray
    intercept: np.ndarray
    mean: np.ndarray
    scale: np.ndarray

    def __post_init__(self) -> None:
        for name in ("coef", "intercept", "mean", "scale"):
            a = np.asarray(getattr(self, name), dtype=np.float64)
            if not np.all(np.isfinite(a)):
                raise ValueError(f"classifier/{name} contains non-finite values")
            setattr(self, name, a)
        k, n_f = self.coef.shape
        if self.intercept.shape != (k,) or self.mean.shape != (n_f,) or self.scale.shape != (n_f,):
            raise ValueError(f"classifier arrays disagree: coef {self.coef.shape}, intercept {self.intercept.shape}, "
                             f"mean {self.mean.shape}, scale {self.scale.shape}")
        if np.any(self.scale <= 0):
            raise ValueError("classifier/scale must be positive")

    @property
    def n_classes(self) -> int:
        return self.coef.shape[0]

    def probabilities(self, features: np.ndarray) -> np.ndarray:
        """``(k,)`` class probabilities of one feature vector ``(n_f,)`` (or ``(m, k)`` for ``(m, n_f)``)."""
        with np.errstate(over="ignore", invalid="ignore"):
            z = (np.asarray(features, dtype=np.float64) - self.mean) / self.scale
            logits = z @ self.coef.T + self.intercept
            if not np.all(np.isfinite(logits)):
                raise ModelDataError("the classifier's logits are not finite for these features: the model file's "
                                      "classifier/coef, classifier/mean or classifier/scale overflow; rebuild the "
                                      "dictionary")
            logits = logits - logits.max(axis=-1, keepdims=True)
            e = np.exp(logits)
        return e / e.sum(axis=-1, keepdims=True)
