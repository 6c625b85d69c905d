"""The scikit-learn side of LesionClassifier: its parameters, checked, set, shown.

skorch's ``NeuralNet`` keeps its own parameter handling (it lists every public
attribute, and prints itself as a module summary). This mixin gives a skorch
subclass sklearn's: a ``_parameter_constraints`` table checked at ``fit``,
nested estimator parameters (``augmentation__rotation``), and sklearn's repr
and tags.
"""

from __future__ import annotations

import inspect

from sklearn.base import BaseEstimator
from sklearn.utils._param_validation import Interval, validate_parameter_constraints

from skderm.inputs import image_input_tags

__all__ = ["ResolvedParam", "SklearnParamsMixin", "forwarding_signature"]


class _Range(Interval):
    """sklearn's Interval, which would take a bool as the number 0 or 1: a bool is not one."""

    def is_satisfied_by(self, val):
        return not isinstance(val, bool) and super().is_satisfied_by(val)


class ResolvedParam:
    """A parameter kept as given that reads as resolved: ``device="auto"`` reads ``"cpu"``.

    skorch reads ``self.device`` wherever it computes; with this descriptor it
    reads ``resolve(net, value)``, while ``get_params``, ``clone``, ``repr`` and
    pickles keep the value the user gave.
    """

    def __init__(self, resolve):
        self.resolve = resolve

    def __set_name__(self, owner, name):
        self.name = name

    def __get__(self, net, owner=None):
        if net is None:
            return self
        return self.resolve(net, net.__dict__.get(self.name))

    def __set__(self, net, value):
        net.__dict__[self.name] = value


class SklearnParamsMixin:
    """Parameter checks, nested ``<estimator>__<param>`` setting, repr and tags.

    ``_nested_params`` names the parameters that hold sklearn estimators
    (``Augmentation``, ``Mixup``) whose own parameters a search may set.
    """

    _nested_params: tuple[str, ...] = ()

    def _check_params(self, names=None) -> None:
        """Check parameters (all, or ``names``) against ``_parameter_constraints``;
        the error names the parameter, its value and the valid choices."""
        constraints = self._parameter_constraints
        names = constraints if names is None else names
        params = {k: getattr(self, k) for k in names}
        validate_parameter_constraints({k: constraints[k] for k in names}, params,
                                       caller_name=type(self).__name__)

    def set_params(self, **params):
        """Set parameters, nested ones (``augmentation__rotation``) included."""
        nested = {}
        for name in self._nested_params:
            prefix = name + "__"
            nested[name] = {k[len(prefix):]: params.pop(k) for k in list(params)
                            if k.startswith(prefix)}
            if name in params:
                setattr(self, name, params.pop(name))
        super().set_params(**params)
        for name, values in nested.items():
            if not values:
                continue
            owner = getattr(self, name)
            if not isinstance(owner, BaseEstimator):
                raise ValueError(
                    f"cannot set {sorted(f'{name}__{k}' for k in values)}: {name} is "
                    f"{owner!r}; pass {name}= an object with those parameters first")
            owner.set_params(**values)
        return self

    def get_params(self, deep=True):
        params = super().get_params(deep=deep)
        for cls in type(self).__mro__:
            for name, attr in vars(cls).items():
                if isinstance(attr, ResolvedParam) and name in params:
                    params[name] = self.__dict__.get(name)  # as given, not as resolved
        return params

    def _get_param_names(self):
        # skorch lists every attribute not ending in "_", private ones included
        return [k for k in super()._get_param_names() if not k.startswith("_")]

    # sklearn's repr (changed parameters only, nested in a Pipeline or search too)
    # rather than skorch's module summary
    __repr__ = BaseEstimator.__repr__

    def __sklearn_tags__(self):
        tags = image_input_tags(super().__sklearn_tags__())
        tags.non_deterministic = False
        return tags


def forwarding_signature(init, base_init) -> inspect.Signature:
    """``init``'s signature, with the keywords it passes to ``base_init`` as ``**kwargs``.

    sklearn's repr reads each parameter's default from ``__init__``'s signature,
    and lists every parameter it does not find there as changed.
    """
    own = [p for p in inspect.signature(init).parameters.values() if p.kind is not p.VAR_KEYWORD]
    names = {p.name for p in own}
    return inspect.Signature(own + [p for p in inspect.signature(base_init).parameters.values()
                                    if p.name not in names])
