"""One uploaded image -> probabilities, the decision and a Grad-CAM overlay, as plain values.

The upload is written to a private temporary folder and predicted from there,
so it goes through the same decoding as ``predict_proba`` on a file: the
probabilities are the model's own for that file.
"""

from __future__ import annotations

import base64
import io
import math
import os
import tempfile

import numpy as np
import pandas as pd
from sklearn.ensemble import VotingClassifier
from sklearn.utils.validation import check_is_fitted

from skderm.exceptions import ImageError, SkdermError

# image suffixes an upload keeps; anything else is decoded from a neutral name
_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp"}


class UploadError(SkdermError, ValueError):
    """An upload the server refuses (HTTP 400): not an image, or a bad form field."""


def _members(model):
    """(what is decided, the LesionClassifiers inside, the kind of model)."""
    from skderm.classifier import LesionClassifier
    from skderm.decision import LesionLevelClassifier

    inner, kind = model, "classifier"
    if isinstance(model, LesionLevelClassifier):
        check_is_fitted(model, "estimator_")
        inner, kind = model.estimator_, "lesion-level"
    if isinstance(inner, LesionClassifier):
        inner.check_is_fitted()
        return inner, [inner], kind
    if isinstance(inner, VotingClassifier) and inner.voting == "soft":
        check_is_fitted(inner, "estimators_")
        if all(isinstance(m, LesionClassifier) for m in inner.estimators_):
            return inner, list(inner.estimators_), "vote" if kind == "classifier" else kind
    raise TypeError(f"skderm.serve needs a fitted LesionClassifier, a soft VotingClassifier of "
                    f"them or a LesionLevelClassifier around either (what load_model returns), "
                    f"got {type(model).__name__}")


def _numeric_columns(encoder) -> set[str]:
    """Columns the fitted metadata ColumnTransformer treats as numbers (its 'num' part)."""
    return {c for name, _, cols in getattr(encoder, "transformers_", []) if name == "num"
            for c in cols}


def _categories(encoder) -> dict[str, list[str]]:
    """The categories the one-hot part of the fitted metadata encoder learned, per column."""
    out = {}
    for name, pipe, cols in getattr(encoder, "transformers_", []):
        if name == "cat":
            for col, cats in zip(cols, pipe[-1].categories_, strict=True):
                out[col] = [str(c) for c in cats if c != "missing"]
    return out


class Predictor:
    """Predict one uploaded image with a fitted model, as the web page shows it.

    Parameters
    ----------
    model : LesionClassifier, soft VotingClassifier or LesionLevelClassifier
        Fitted; what :func:`skderm.load_model` returns.
    """

    def __init__(self, model):
        self.model = model
        self.inner, self.members, self.kind = _members(model)
        self.vote = isinstance(self.inner, VotingClassifier)
        self.classes = [c.item() if hasattr(c, "item") else c for c in self.inner.classes_]
        self.metadata_columns: list[str] = []
        self.numeric: set[str] = set()
        self.categories: dict[str, list[str]] = {}
        for m in self.members:
            for c in m.metadata_columns or []:
                if c not in self.metadata_columns:
                    self.metadata_columns.append(c)
            encoder = getattr(m, "metadata_encoder_", None)
            self.numeric |= _numeric_columns(encoder)
            for col, cats in _categories(encoder).items():
                self.categories[col] = sorted(set(self.categories.get(col, [])) | set(cats))

    def describe(self) -> dict:
        """What GET /health reports and the page builds its form from."""
        return {"status": "ok", "model": type(self.model).__name__, "kind": self.kind,
                "classes": self.classes, "metadata_columns": self.metadata_columns,
                "numeric_metadata": sorted(self.numeric), "categories": self.categories}

    def _metadata(self, fields: dict[str, str]) -> tuple[dict, list[str], list[str]]:
        """(the values, the columns not given, the notes on what the encoder will do)."""
        values, missing, notes = {}, [], []
        for name in self.metadata_columns:
            text = (fields.get(name) or "").strip()
            if not text:
                values[name] = np.nan
                missing.append(name)
            elif name in self.numeric:
                try:
                    number = float(text)
                except ValueError:
                    number = math.nan
                if not math.isfinite(number):
                    raise UploadError(f"form field {name!r} must be a number, got {text!r}; "
                                      "leave it empty if it is unknown")
                values[name] = number
            else:
                values[name] = text
                known = self.categories.get(name)
                if known is not None and text not in known:
                    notes.append(f"{name}={text!r} was not seen in training (known: "
                                 f"{', '.join(known)}); it is encoded as none of them")
        if missing:
            notes.append(f"not given: {', '.join(missing)}; the model's metadata encoder "
                         "imputed them as at fit time")
        return values, missing, notes

    def _X(self, path: str, metadata: dict):
        if not self.metadata_columns:
            return [path]
        row = {m.path_column: path for m in self.members}
        frame = pd.DataFrame({**row, **metadata}, index=[0])
        for name in self.metadata_columns:  # an all-missing column must keep the fitted dtype
            frame[name] = frame[name].astype(float if name in self.numeric else object)
        return frame

    def _decide(self, proba: np.ndarray) -> tuple[object, str]:
        if self.kind == "lesion-level":
            label = self.model.decide(proba)[0]
            return label, (f"LesionLevelClassifier.decide: argmax(log p - t * log prior) "
                           f"with t = prior_shift = {self.model.prior_shift:g}, this image on "
                           "its own (no lesion pooling)")
        label = self.inner.classes_[int(np.argmax(proba[0]))]
        if self.kind == "vote":
            return label, f"argmax of the soft vote of {len(self.members)} members"
        return label, "argmax of the probabilities"

    def _saliency(self, X, path: str, label) -> tuple[str | None, str]:
        from PIL import Image

        from skderm.explain import grad_cam, overlay
        from skderm.images import read_image

        clf, target = self.members[0], label
        if self.vote:  # VotingClassifier fits its members on encoded labels (0..n-1)
            target = self.inner.le_.transform([label])[0]
        cam = grad_cam(clf, X, target=target)[0]
        picture = overlay(read_image(path, clf.image_size_), cam)
        buf = io.BytesIO()
        Image.fromarray(picture).save(buf, format="PNG")
        note = f"Grad-CAM of the decided class {label!r}"
        if self.vote:
            note += " from the first member of the vote only (a soft vote has no single map)"
        return base64.b64encode(buf.getvalue()).decode("ascii"), note

    def predict(self, data: bytes, filename: str = "", fields: dict[str, str] | None = None
                ) -> dict:
        """The JSON answer for one uploaded image's bytes and its optional form fields.

        Raises
        ------
        UploadError
            The bytes are not an image Pillow decodes, or a metadata field is invalid.
        """
        metadata, missing, notes = self._metadata(fields or {})
        suffix = os.path.splitext(filename)[1].lower()
        with tempfile.TemporaryDirectory(prefix="skderm-serve-") as tmp:
            path = os.path.join(tmp, "upload" + (suffix if suffix in _SUFFIXES else ".img"))
            with open(path, "wb") as fh:
                fh.write(data)
            self._check_image(path, filename)
            X = self._X(path, metadata)
            proba = np.asarray(self.inner.predict_proba(X), dtype=float)
            label, decided_by = self._decide(proba)
            label = label.item() if hasattr(label, "item") else label  # numpy -> JSON
            png, note = self._saliency(X, path, label)
        answer = {"classes": self.classes, "probabilities": proba[0].tolist(),
                  "label": label,
                  "decided_by": decided_by, "saliency_png_base64": png, "saliency": note}
        if self.metadata_columns:
            answer["metadata"] = {k: (None if isinstance(v, float) and math.isnan(v) else v)
                                  for k, v in metadata.items()}
            answer["metadata_missing"] = missing
            answer["metadata_note"] = "; ".join(notes)
        return answer

    @staticmethod
    def _check_image(path: str, filename: str) -> None:
        from skderm.images import read_image

        name = filename or "the upload"
        try:
            read_image(path, (8, 8))
        except ImageError as exc:
            reason = str(exc).replace(path, name)
            raise UploadError(f"{name!r} is not an image skderm can read (JPEG, PNG or another "
                              f"format Pillow decodes): {reason}") from None
