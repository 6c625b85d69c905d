"""The ``skderm`` command (also ``python -m skderm``).

Subcommands:

``skderm demo [--data DIR] [--out DIR]``
    The showcase, end to end: a RandomOverSampler and a LesionClassifier in an
    imbalanced-learn Pipeline, a small GridSearchCV over lesion-grouped
    stratified folds scored on balanced accuracy and MCC, then the refitted
    best model's per-class report (with bootstrap intervals) on held-out
    lesions. Without ``--data`` it runs on a synthetic HAM10000-like set made
    on the fly, so it works on a fresh install with no data and no network.
``skderm backbones``
    The backbone registry and which ImageNet weights are on this machine.
``skderm train --data DIR --out MODEL``
    Train a LesionClassifier (``--recipe vote``: a soft vote of three; the
    default ``--recipe auto`` is that vote where a CUDA GPU trains, else the
    ``"cpu"`` recipe) on a HAM10000 folder and save it
    (:func:`skderm.persistence.save_model`). Both recipes' models decide per
    lesion with their measured prior shift
    (:class:`~skderm.LesionLevelClassifier`) unless ``--decision image``.
``skderm predict --model MODEL IMAGE_OR_DIR... [--csv OUT] [--format plain|isic]``
    Class probabilities per image; ``--format isic`` writes the ISIC 2018
    Task 3 submission format.
``skderm evaluate --model MODEL --data DIR --out REPORT_DIR``
    metrics.json, report.csv and (with matplotlib) confusion-matrix and ROC plots.
``skderm cv --data DIR --folds K``
    Lesion-grouped stratified K-fold cross-validation of a LesionClassifier.

``--param k=v`` (train, cv) sets any LesionClassifier parameter, skorch-style
nested ones included (``--param optimizer__weight_decay=0.01``); values are
Python literals, else strings.

Errors print one line and exit with status 1 (``--debug`` shows the traceback).
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
import tempfile
import time

__all__ = ["main", "build_parser", "ISIC_COLUMNS"]


def _log(args, *msg) -> None:
    if not args.quiet:
        print(*msg, flush=True)


def _subsample(data, max_images: int, seed: int):
    """Keep whole lesions, stratified by class, until about ``max_images`` images."""
    import numpy as np

    from skderm.model_selection import grouped_split_indices

    n = len(data.target)
    if not max_images or n <= max_images:
        return data.data, data.target
    # the held-out part of a grouped, stratified split is the subsample
    _, keep = grouped_split_indices(data.target.to_numpy(), data.groups.to_numpy(),
                                    test_size=max_images / n, random_state=seed)
    keep = np.sort(keep)
    return data.data.iloc[keep].reset_index(drop=True), data.target.iloc[keep].reset_index(
        drop=True)


def cmd_demo(args) -> int:
    import numpy as np
    import pandas as pd
    from imblearn.over_sampling import RandomOverSampler
    from imblearn.pipeline import make_pipeline
    from sklearn.model_selection import GridSearchCV, StratifiedGroupKFold

    from skderm import LesionClassifier, load_ham10000, make_lesions
    from skderm.metrics import bootstrap_report, classification_report_frame
    from skderm.model_selection import check_lesion_cv, lesion_train_test_split

    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="skderm_demo_") as tmp:
        if args.data:
            data = load_ham10000(args.data)
            source = f"HAM10000 folder {args.data}"
        else:
            data = make_lesions(args.n_synthetic, random_state=args.seed, directory=tmp)
            source = f"{args.n_synthetic} synthetic lesion images (skderm.make_lesions)"
        X, y = _subsample(data, args.max_images, args.seed)
        _log(args, f"data: {source}: using {len(X)} images of {X['lesion_id'].nunique()} "
                   f"lesions, {y.nunique()} classes")
        _log(args, "classes: " + ", ".join(f"{k} {v}" for k, v in y.value_counts().items()))
        # a quarter of the lesions never take part in model selection
        try:
            X_train, X_test, y_train, y_test = lesion_train_test_split(
                X, y, groups="lesion_id", stratify=y, test_size=0.25, random_state=args.seed)
        except ValueError as exc:  # too few lesions of a rare class to stratify
            _log(args, f"note: held-out split not stratified ({str(exc).split(';')[0]})")
            X_train, X_test, y_train, y_test = lesion_train_test_split(
                X, y, groups="lesion_id", test_size=0.25, random_state=args.seed)

        clf = LesionClassifier(
            backbone=args.backbone, image_size=tuple(args.image_size), freeze=args.freeze,
            max_epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
            random_state=args.seed, verbose=0 if args.quiet else 1,
            # the lesion-grouped folds do the evaluating; no inner split keeps it quick
            valid_size=None)
        pipe = make_pipeline(RandomOverSampler(random_state=args.seed), clf)
        folds = check_lesion_cv(
            StratifiedGroupKFold(n_splits=args.folds, shuffle=True, random_state=args.seed),
            X_train, y_train, groups="lesion_id")  # raises if a lesion were on both sides
        grid = {"lesionclassifier__lr": [args.lr, args.lr / 3]}
        _log(args, f"pipeline: RandomOverSampler -> LesionClassifier(backbone={args.backbone!r}, "
                   f"freeze={args.freeze!r}, image_size={tuple(args.image_size)}, "
                   f"max_epochs={args.epochs}); grid {grid} over {args.folds} lesion-grouped "
                   f"stratified folds of {len(X_train)} images; {len(X_test)} images of "
                   f"{X_test['lesion_id'].nunique()} other lesions held out")
        search = GridSearchCV(pipe, grid, cv=folds, refit="bacc", error_score="raise",
                              scoring={"bacc": "balanced_accuracy", "mcc": "matthews_corrcoef"})
        search.fit(X_train, y_train)

        res = search.cv_results_
        table = pd.DataFrame({
            "lr": res["param_lesionclassifier__lr"],
            "balanced_accuracy": [f"{m:.3f} +/- {s:.3f}" for m, s in
                                  zip(res["mean_test_bacc"], res["std_test_bacc"], strict=True)],
            "mcc": [f"{m:.3f} +/- {s:.3f}" for m, s in
                    zip(res["mean_test_mcc"], res["std_test_mcc"], strict=True)],
            "rank": res["rank_test_bacc"]})
        best = search.best_index_
        fold_bacc = [res[f"split{k}_test_bacc"][best] for k in range(args.folds)]
        fold_mcc = [res[f"split{k}_test_mcc"][best] for k in range(args.folds)]
        print("\ngrid search (mean +/- sd over lesion-grouped folds):")
        print(table.to_string(index=False))
        print(f"cross-validated, best candidate: balanced accuracy {np.mean(fold_bacc):.3f} +/- "
              f"{np.std(fold_bacc, ddof=1):.3f}   MCC {np.mean(fold_mcc):.3f} +/- "
              f"{np.std(fold_mcc, ddof=1):.3f}   (per fold: "
              + ", ".join(f"{b:.3f}" for b in fold_bacc) + ")")

        model = search.best_estimator_
        proba = model.predict_proba(X_test)
        classes = model.classes_
        y_pred = classes[proba.argmax(axis=1)]
        report = classification_report_frame(y_test.to_numpy(), y_pred, proba, classes=classes)
        boot = bootstrap_report(y_test.to_numpy(), y_pred, groups=X_test["lesion_id"].to_numpy(),
                                n_boot=500, random_state=args.seed)
        per_class = report.loc[[c for c in classes if c in report.index],
                               ["recall", "specificity", "f1", "auc", "support"]]
        print(f"\nheld-out lesions, refitted best model ({len(X_test)} images):")
        print(per_class.to_string(float_format=lambda v: f"{v:.3f}"))
        print(f"held-out: balanced accuracy {boot.loc['balanced_accuracy', 'estimate']:.3f} "
              f"[95% CI {boot.loc['balanced_accuracy', 'low']:.3f}-"
              f"{boot.loc['balanced_accuracy', 'high']:.3f}]   MCC "
              f"{boot.loc['mcc', 'estimate']:.3f} [{boot.loc['mcc', 'low']:.3f}-"
              f"{boot.loc['mcc', 'high']:.3f}]   (chance balanced accuracy "
              f"{1 / y.nunique():.3f}; {time.perf_counter() - t0:.0f} s)")
        if args.out:
            written = _write_report(args, args.out, y_test.to_numpy(), y_pred, proba, classes,
                                    report)
            _log(args, f"wrote {', '.join(written)} to {args.out}")
    return 0


def cmd_backbones(args) -> int:
    from skderm.backbones import hub_checkpoint_dir, list_backbones

    frame = list_backbones(args.include)
    frame = frame.assign(weights=frame.weights_available.map({True: "available",
                                                              False: "missing"}))
    cols = ["name", "source", "input_size", "weights", "weights_file"]
    print(frame[cols].to_string(index=False))
    print(f"\nMissing weights are looked for in {hub_checkpoint_dir()} "
          "(set TORCH_HOME to move it) and downloaded there when online.")
    return 0


# --------------------------------------------------------------------------
# train / predict / evaluate / cv
# --------------------------------------------------------------------------

#: Column order of the ISIC 2018 Task 3 submission format.
ISIC_COLUMNS = ("MEL", "NV", "BCC", "AKIEC", "BKL", "DF", "VASC")
_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
# skorch routes these prefixes to nested objects (optimizer__weight_decay ...)
_NESTED_PREFIXES = ("module", "criterion", "optimizer", "iterator_train", "iterator_valid",
                    "callbacks", "dataset", "compile", "augmentation")


def _parse_params(items: list[str] | None) -> dict:
    """``["k=v", ...]`` -> dict; values are Python literals, else plain strings."""
    import ast

    params = {}
    for item in items or []:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ValueError(f"--param {item!r} is not of the form name=value "
                             "(e.g. --param hidden_units=256)")
        try:
            params[key] = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            params[key] = text  # freeze=backbone: a bare word is a string
    return params


def _check_param_names(params: dict) -> None:
    import difflib

    from skderm import LesionClassifier

    valid = set(LesionClassifier().get_params(deep=False))
    unknown = [k for k in params
               if k not in valid and k.split("__", 1)[0] not in _NESTED_PREFIXES]
    if unknown:
        hints = [f"{k!r} (did you mean {m[0]!r}?)" if (m := difflib.get_close_matches(k, valid, 1))
                 else repr(k) for k in unknown]
        raise ValueError(f"unknown --param name {', '.join(hints)}: not a LesionClassifier "
                         "parameter; see help(skderm.LesionClassifier), or use a skorch "
                         "prefix such as optimizer__weight_decay")


def _make_classifier(args):
    """A LesionClassifier from the common options of train and cv, --param last.

    With an ensemble recipe (``--recipe vote``), a soft-voting VotingClassifier
    whose members each start from their own settings and then take the options
    and ``--param`` given, which apply to every member.
    """
    from skderm.recipes import ENSEMBLES, RECIPES, member_recipes

    params = _parse_params(args.param)
    _check_param_names(params)
    name = args.recipe
    if name == "auto":
        name = _auto_recipe(params.get("device", "auto"))
        _log(args, f"recipe {name!r}: "
                   + ("a CUDA GPU is here, so the three-network vote (--recipe cpu trains "
                      "one network)" if name == "vote" else
                      "no CUDA GPU, so the one network that trains within about an hour on "
                      "a CPU (--recipe vote trains the three-network vote, about 4-5 hours "
                      "on 2 cores)"))
    # the recipe first, then the options given, then --param
    given = {"random_state": args.seed, "verbose": 0 if args.quiet else 1,
             # long work shows batches and decoded images; --quiet silences it
             "progress_bar": not args.quiet}
    if args.backbone is not None:
        given["backbone"] = args.backbone
    if args.epochs is not None:
        given["max_epochs"] = args.epochs
    if args.weights is not None:
        given["weights"] = None if args.weights.lower() == "none" else args.weights
    if args.image_size is not None:
        given["image_size"] = tuple(args.image_size)
    checkpoint_dir = getattr(args, "checkpoint_dir", None)
    if checkpoint_dir is None and args.command == "train":
        checkpoint_dir = f"{args.out}.checkpoints"  # beside the model, never in the data
    if getattr(args, "resume", False):
        if checkpoint_dir is None:
            raise ValueError("--resume needs --checkpoint-dir DIR: the folder the interrupted "
                             "run wrote its checkpoints to")
        given["warm_start"] = True
    if checkpoint_dir is not None:
        given["checkpoint_dir"] = checkpoint_dir
    if name not in ENSEMBLES:
        model = _recipe_classifier(args, name, RECIPES[name], given, params)
    else:
        from sklearn.ensemble import VotingClassifier

        model = VotingClassifier(
            [(member, _recipe_classifier(args, f"{name}: {member}", recipe, given, params))
             for member, recipe in member_recipes(name)], voting="soft")
    return _with_decision(args, name, model)


def _with_decision(args, name: str, model):
    """``model`` inside LesionLevelClassifier with the recipe's measured rule (--decision lesion)."""
    from skderm.decision import LesionLevelClassifier
    from skderm.recipes import LESION_DECISIONS

    if args.decision == "image" or name not in LESION_DECISIONS:
        return model
    return LesionLevelClassifier(model, prior_shift=LESION_DECISIONS[name])


def _unwrapped(clf):
    """The model inside a LesionLevelClassifier (the fitted one once it is fitted), else clf."""
    from skderm.decision import LesionLevelClassifier

    if isinstance(clf, LesionLevelClassifier):
        return getattr(clf, "estimator_", clf.estimator)
    return clf


def _pooling_column(clf) -> str | None:
    """The column a LesionLevelClassifier pools images by, or None."""
    from skderm.decision import LesionLevelClassifier

    if isinstance(clf, LesionLevelClassifier) and clf.pooling is not None:
        return clf.group_column
    return None


def _decision(clf) -> str:
    """``deciding per lesion (...), prior shift ...`` of a LesionLevelClassifier."""
    column = _pooling_column(clf)
    how = f"per lesion (each {column}'s images pooled)" if column else "per image"
    return f"deciding {how}, prior shift {clf.prior_shift:+g}"


def _decision_note(clf) -> str:
    """`` (deciding ...)`` for a LesionLevelClassifier, else ``""``."""
    return f" ({_decision(clf)})" if _unwrapped(clf) is not clf else ""


def _labels(clf, proba):
    """The labels ``clf.predict`` gives, from the probabilities it gave."""
    if hasattr(clf, "decide"):  # LesionLevelClassifier: the prior shift
        return clf.decide(proba)
    return clf.classes_[proba.argmax(axis=1)]


def _auto_recipe(device) -> str:
    """``--recipe auto``: the best measured recipe that trains in reasonable time here."""
    from skderm.classifier.network import resolve_device

    return "vote" if str(resolve_device(device)).startswith("cuda") else "cpu"


def _recipe_classifier(args, label: str, recipe: dict, given: dict, params: dict):
    from skderm import LesionClassifier
    from skderm.recipes import _for_backbone

    params = dict(params)
    nested_aug = {k: params.pop(k) for k in list(params) if k.startswith("augmentation__")}
    merged = _for_backbone(copy.deepcopy(recipe), {**given, **params})
    if merged.get("freeze_until") != {**recipe, **given, **params}.get("freeze_until"):
        # _for_backbone dropped the recipe's layer name: say so
        _log(args, f"note: the {label!r} recipe's freeze_until={recipe['freeze_until']!r} "
                   f"is a layer of {recipe['backbone']}; fine-tuning every layer of "
                   f"{merged['backbone']} (--param freeze_until=LAYER keeps the layers before "
                   f"LAYER frozen)")
    clf = LesionClassifier(**merged)
    if nested_aug:
        clf.set_params(**nested_aug)
    return clf


def _named_members(clf) -> list[tuple[str, object]]:
    """``[(name, LesionClassifier)]`` of a model: ``[("", clf)]``, or a
    VotingClassifier's members (fitted ones once it is fitted)."""
    clf = _unwrapped(clf)
    if not hasattr(clf, "estimators"):
        return [("", clf)]
    named = [(name, est) for name, est in clf.estimators if est != "drop"]
    fitted = getattr(clf, "estimators_", None)
    if fitted is None:
        return named
    return [(name, est) for (name, _), est in zip(named, fitted, strict=True)]


def _members(clf) -> list:
    """The LesionClassifiers of a model: itself, or a VotingClassifier's members."""
    return [member for _, member in _named_members(clf)]


def _epochs(clf) -> str:
    """Epochs trained: ``12``, or ``12+24+12`` for an ensemble's members."""
    return "+".join(str(len(m.history_)) for m in _members(clf))


def _metadata_columns(clf) -> list:
    """The metadata columns any member of the model reads, in first-seen order."""
    columns = []
    for m in _members(clf):
        columns += [c for c in (m.metadata_columns or []) if c not in columns]
    return columns


def _describe(clf) -> str:
    inner = _unwrapped(clf)
    if inner is not clf:
        return f"{_describe(inner)}; {_decision(clf)}"
    if hasattr(clf, "estimators"):
        return "a soft vote of " + ", ".join(f"{name}: {_describe(est)}"
                                             for name, est in _named_members(clf))
    size = clf.image_size if clf.image_size is not None else "backbone default"
    return (f"LesionClassifier(backbone={clf.backbone!r}, image_size={size}, "
            f"max_epochs={clf.max_epochs})")


def cmd_train(args) -> int:
    from skderm import load_ham10000
    from skderm.persistence import save_model

    t0 = time.perf_counter()
    data = load_ham10000(args.data)
    clf = _make_classifier(args)
    _log(args, f"training {_describe(clf)} on {len(data.target)} images of "
               f"{data.groups.nunique()} lesions from {args.data}")
    clf.fit(data.data, data.target)
    save_model(clf, args.out)
    print(f"trained on {len(data.target)} images, {len(clf.classes_)} classes "
          f"({', '.join(map(str, clf.classes_))}), {_epochs(clf)} epochs in "
          f"{time.perf_counter() - t0:.0f} s; saved to {args.out}")
    return 0


def _image_files(items: list[str]) -> list[str]:
    from skderm.exceptions import ImageError

    files = []
    for item in items:
        if os.path.isdir(item):
            found = sorted(os.path.join(item, name) for name in os.listdir(item)
                           if name.lower().endswith(_IMAGE_SUFFIXES)
                           and os.path.isfile(os.path.join(item, name)))
            if not found:
                raise ImageError(f"folder {item!r} holds no .jpg, .jpeg or .png images", item)
            files += found
        elif os.path.isfile(item):
            files.append(item)
        else:
            raise ImageError(f"no image or folder at {item!r}", item)
    return files


def _with_metadata(files: list[str], csv: str, columns: list[str], path_column: str,
                   optional: list[str] = ()):
    """A frame of ``files`` and their ``columns`` from ``csv``, matched on image_id = file stem;
    the ``optional`` columns too where the CSV has them."""
    import pandas as pd

    from skderm.datasets import _parse_age
    from skderm.exceptions import DatasetError

    try:
        # read as load_ham10000 reads the training CSV: text kept as text (an empty
        # or "unknown" site stays that string), age parsed by the same rule
        table = pd.read_csv(csv, dtype=str, keep_default_na=False)
    except FileNotFoundError:
        raise DatasetError(f"no metadata file at {csv!r}") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DatasetError(f"cannot read metadata file {csv!r} as CSV: {exc}") from None
    table.columns = [str(c).strip() for c in table.columns]
    wanted = ["image_id", *columns]
    absent = [c for c in wanted if c not in table.columns]
    if absent:
        raise DatasetError(f"metadata file {csv!r} has no column(s) {absent}; it has "
                           f"{list(table.columns)} (the model needs image_id and {columns})")
    columns = [*columns, *(c for c in optional if c in table.columns and c not in columns)]
    wanted = ["image_id", *columns]
    for column in wanted:
        table[column] = table[column].str.strip()
    if "age" in columns:
        table["age"] = _parse_age(table, csv)
    repeated = table["image_id"][table["image_id"].duplicated()].unique()
    if len(repeated):
        raise DatasetError(f"metadata file {csv!r} lists image_id {list(repeated[:5])} more "
                           "than once; keep one row per image")
    stems = [os.path.splitext(os.path.basename(f))[0] for f in files]
    rows = table.set_index("image_id")
    unknown = [s for s in stems if s not in rows.index]
    if unknown:
        raise DatasetError(f"metadata file {csv!r} has no row for {len(unknown)} image(s), e.g. "
                           f"{unknown[:5]}; add rows whose image_id is the file name without "
                           "its extension")
    X = rows.loc[stems, columns].reset_index(drop=True)
    X.insert(0, path_column, files)
    return X


def _isic_frame(stems: list[str], proba, classes):
    """The ISIC 2018 Task 3 submission table; a class the model never saw gets 0.0."""
    import numpy as np
    import pandas as pd

    codes = [str(c).upper() for c in classes]
    extra = sorted(set(codes) - set(ISIC_COLUMNS))
    if extra:
        raise ValueError(f"--format isic needs a model of HAM10000 dx classes "
                         f"{[c.lower() for c in ISIC_COLUMNS]}, but this one also predicts "
                         f"{extra}; use --format plain")
    table = pd.DataFrame({"image": stems})
    for code in ISIC_COLUMNS:
        table[code] = proba[:, codes.index(code)] if code in codes else np.zeros(len(stems))
    return table


def cmd_predict(args) -> int:
    import pandas as pd

    from skderm.persistence import load_model

    clf = load_model(args.model)
    files = _image_files(args.images)
    columns = _metadata_columns(clf)
    group = _pooling_column(clf)
    if columns and not args.metadata:
        raise ValueError(f"model {args.model!r} also reads metadata columns "
                         f"{columns}, which image files do not carry; "
                         "pass --metadata CSV (an image_id column naming each image's file "
                         "stem, plus those columns: HAM10000_metadata.csv has them)")
    if args.metadata and (columns or group):
        X = _with_metadata(files, args.metadata, columns, _members(clf)[0].path_column,
                           optional=[group] if group else [])
    else:
        if args.metadata:
            # stderr: the table may be going to stdout
            print(f"note: model {args.model!r} reads no metadata; --metadata ignored",
                  file=sys.stderr)
        X = files
    if group and hasattr(X, "columns") and group in X.columns:
        # the CSV is read as text: an empty id is a missing one, an image on its own
        X[group] = X[group].where(X[group] != "", None)
    if group and not (hasattr(X, "columns") and group in X.columns):
        print(f"note: model {args.model!r} pools each lesion's images, but these images come "
              f"without a {group!r} (pass --metadata with that column to pool them); deciding "
              "image by image", file=sys.stderr)
        clf.set_params(group_column=None)
    proba = clf.predict_proba(X)
    if args.format == "isic":
        stems = [os.path.splitext(os.path.basename(f))[0] for f in files]
        table = _isic_frame(stems, proba, clf.classes_)
    else:
        table = pd.DataFrame({"image": files, "prediction": _labels(clf, proba)})
        for j, c in enumerate(clf.classes_):
            table[str(c)] = proba[:, j]
    if args.csv:
        table.to_csv(args.csv, index=False)
        _log(args, f"predicted {len(files)} images; wrote {args.csv}")
    else:
        sys.stdout.write(table.to_csv(index=False))
    return 0


def _json_number(value):
    import math

    value = float(value)
    return None if math.isnan(value) else value


def _metrics_dict(report, n_images: int) -> dict:
    overall = ("balanced_accuracy", "mcc", "accuracy")
    per_class = [i for i in report.index if i not in overall + ("macro avg", "weighted avg")]
    out = {name: _json_number(report.loc[name, "value"]) for name in overall}
    out["n_images"] = int(n_images)
    out["per_class"] = {str(c): {col: _json_number(report.loc[c, col])
                                 for col in ("recall", "specificity", "auc")}
                        | {"support": int(report.loc[c, "support"])}
                        for c in per_class}
    return out


def _plotting(args):
    """skderm.plotting, or None (with a one-line notice) when it or matplotlib is missing."""
    os.environ.setdefault("MPLBACKEND", "Agg")  # files only: never open a window
    import importlib

    try:
        plotting = importlib.import_module("skderm.plotting")
    except ImportError as exc:
        _log(args, f"note: no plots ({exc}); install matplotlib for PNGs")
        return None
    return plotting


def _write_report(args, out, y_true, y_pred, proba, classes, report) -> list[str]:
    """metrics.json, report.csv and (with matplotlib) confusion-matrix and ROC PNGs."""
    import json

    os.makedirs(out, exist_ok=True)
    metrics = _metrics_dict(report, len(y_true))
    with open(os.path.join(out, "metrics.json"), "w") as fh:
        json.dump(metrics, fh, indent=2)
    report.to_csv(os.path.join(out, "report.csv"), index_label="label")
    written = ["metrics.json", "report.csv"]
    plotting = _plotting(args)
    if plotting is not None:
        labels = sorted(set(y_true) | set(classes))
        fig = plotting.plot_confusion_matrices(y_true, y_pred, labels=labels)
        plotting.save_figure(fig, os.path.join(out, "confusion_matrix.png"))
        fig = plotting.plot_roc(y_true, proba, classes=classes)
        plotting.save_figure(fig, os.path.join(out, "roc.png"))
        written += ["confusion_matrix.png", "roc.png"]
    return written


def cmd_evaluate(args) -> int:
    from skderm import load_ham10000
    from skderm.metrics import classification_report_frame
    from skderm.persistence import load_model

    clf = load_model(args.model)
    data = load_ham10000(args.data)
    proba = clf.predict_proba(data.data)
    y_pred = _labels(clf, proba)
    y_true = data.target.to_numpy()
    report = classification_report_frame(y_true, y_pred, proba, classes=clf.classes_)
    written = _write_report(args, args.out, y_true, y_pred, proba, clf.classes_, report)
    metrics = _metrics_dict(report, len(y_true))
    decided = _decision_note(clf)
    print(f"{len(y_true)} images: balanced accuracy {metrics['balanced_accuracy']:.3f}, "
          f"MCC {metrics['mcc']:.3f}, accuracy {metrics['accuracy']:.3f}{decided}")
    _log(args, f"wrote {', '.join(written)} to {args.out}")
    return 0


def cmd_cv(args) -> int:
    import numpy as np
    import pandas as pd
    from sklearn.base import clone
    from sklearn.metrics import balanced_accuracy_score, matthews_corrcoef
    from sklearn.model_selection import StratifiedGroupKFold

    from skderm import load_ham10000
    from skderm.model_selection import check_no_lesion_leakage

    if args.folds < 2:
        raise ValueError(f"--folds {args.folds} is too few: use 2 or more")
    data = load_ham10000(args.data)
    X, y, groups = data.data, data.target, data.groups
    template = _make_classifier(args)
    plotting = _plotting(args) if args.out else None
    if args.out:
        os.makedirs(args.out, exist_ok=True)
    cv = StratifiedGroupKFold(n_splits=args.folds, shuffle=True, random_state=0)
    _log(args, f"{args.folds}-fold StratifiedGroupKFold on lesion_id of {len(y)} images "
               f"({groups.nunique()} lesions): {_describe(template)}")
    rows = []
    for k, (train, test) in enumerate(cv.split(X, y, groups), start=1):
        check_no_lesion_leakage(train, test, groups)
        clf = clone(template)
        t0 = time.perf_counter()
        clf.fit(X.iloc[train], y.iloc[train])
        fit_seconds = time.perf_counter() - t0
        pred, image_pred = _fold_predictions(clf, X.iloc[test])
        rows.append({"fold": k, "n_train": len(train), "n_test": len(test),
                     "balanced_accuracy": balanced_accuracy_score(y.iloc[test], pred),
                     "mcc": matthews_corrcoef(y.iloc[test], pred)})
        if image_pred is not None:  # the same networks' argmax, image by image
            rows[-1]["balanced_accuracy_image"] = balanced_accuracy_score(y.iloc[test],
                                                                          image_pred)
            rows[-1]["mcc_image"] = matthews_corrcoef(y.iloc[test], image_pred)
        rows[-1].update({"epochs": _epochs(clf), "fit_seconds": fit_seconds})
        _log(args, f"fold {k}: balanced accuracy {rows[-1]['balanced_accuracy']:.3f}, "
                   f"MCC {rows[-1]['mcc']:.3f}")
        if plotting is not None:
            for name, member in _named_members(clf):
                fig = plotting.plot_learning_curves(member.history_)
                suffix = f"_{name}" if name else ""
                plotting.save_figure(fig, os.path.join(args.out,
                                                       f"learning_curves_fold{k}{suffix}.png"))
    table = pd.DataFrame(rows)
    if args.out:
        table.to_csv(os.path.join(args.out, "results.csv"), index=False)
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    bacc, mcc = table["balanced_accuracy"], table["mcc"]
    print(f"balanced accuracy {bacc.mean():.3f} +/- {np.std(bacc, ddof=1):.3f}   "
          f"MCC {mcc.mean():.3f} +/- {np.std(mcc, ddof=1):.3f}   "
          f"(chance balanced accuracy {1 / y.nunique():.3f}){_decision_note(template)}")
    if "balanced_accuracy_image" in table:
        bacc, mcc = table["balanced_accuracy_image"], table["mcc_image"]
        print(f"image by image, argmax: balanced accuracy {bacc.mean():.3f} +/- "
              f"{np.std(bacc, ddof=1):.3f}   MCC {mcc.mean():.3f} +/- {np.std(mcc, ddof=1):.3f}")
    return 0


def _fold_predictions(clf, X):
    """The model's labels for X and, for a LesionLevelClassifier, its network's own
    image-by-image argmax (else None), from one pass through the network."""
    import numpy as np

    inner = _unwrapped(clf)
    if inner is clf:
        return clf.predict(X), None
    proba = inner.predict_proba(X)
    return clf.decide(clf.pool(proba, X)), np.asarray(inner.classes_)[proba.argmax(axis=1)]


def _add_training_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", metavar="DIR", required=True,
                   help="a HAM10000 folder (metadata CSV + images)")
    p.add_argument("--recipe", choices=("auto", "cpu", "cpu_images", "gpu", "vote", "defaults"),
                   default="auto",
                   help="starting settings (skderm.recipes): 'auto' (default) is 'vote' where "
                        "a CUDA GPU trains (device auto or cuda), else 'cpu'; 'cpu' fine-tunes "
                        "EfficientNet-Lite0 at 192x256 with age/sex/localization from "
                        "blocks.3 on for 12 epochs with the logit-adjusted loss, mixup and "
                        "CutMix, predicting on a centred crop; 'cpu_images' from the image "
                        "alone at "
                        "112x150 (its models predict without --metadata); 'gpu' every layer "
                        "of EfficientNet-Lite2 at 240x320 for 15 epochs, for a CUDA GPU "
                        "(2 minutes on an H100, no more accurate than 'cpu'); 'vote' a soft "
                        "vote of three networks ('cpu', it for 24 epochs, it on "
                        "EfficientNet-Lite2 at 240x320: 4-5 hours on 2 CPU cores, about 10 "
                        "minutes on an H100; the options below apply to each); 'defaults' is "
                        "LesionClassifier's defaults; the options below override it")
    p.add_argument("--decision", choices=("lesion", "image"), default="lesion",
                   help="'lesion' (default): the 'cpu' and 'vote' recipes' models decide per "
                        "lesion, as measured best (skderm.recipes.LESION_DECISIONS: each "
                        "lesion_id's images pooled, then a prior shift towards the frequent "
                        "classes; predict pools when --metadata has lesion_id, else decides "
                        "image by image with the shift); 'image': every image on its own by "
                        "the model's argmax (other recipes always decide so)")
    p.add_argument("--backbone", default=None,
                   help="a name from `skderm backbones` (default: the recipe's)")
    p.add_argument("--weights", default=None,
                   help="'imagenet' (default), a weights file, or 'none' (random start)")
    p.add_argument("--epochs", type=int, default=None, help="default: the recipe's")
    p.add_argument("--image-size", type=int, nargs=2, default=None, metavar=("H", "W"),
                   help="resize images to H x W (default: the recipe's, else the "
                        "backbone's input size)")
    p.add_argument("--param", action="append", metavar="NAME=VALUE",
                   help="any LesionClassifier parameter, repeatable "
                        "(hidden_units=256, freeze=backbone, optimizer__weight_decay=0.01)")
    p.add_argument("--seed", type=int, default=0, help="random_state of the classifier")
    p.add_argument("--checkpoint-dir", metavar="DIR",
                   help="write a checkpoint here after every epoch (train: default "
                        "OUT.checkpoints; cv: none unless given)")
    p.add_argument("--resume", action="store_true",
                   help="continue an interrupted run from its checkpoint (same options and data)")
    p.add_argument("--quiet", action="store_true", help="print only the results")


def build_parser() -> argparse.ArgumentParser:
    from skderm import __version__

    parser = argparse.ArgumentParser(
        prog="skderm", description="scikit-learn compatible skin-lesion image classifiers")
    parser.add_argument("--version", action="version", version=f"skderm {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="lesion-grouped grid search and held-out report, end to end")
    demo.add_argument("--data", metavar="DIR",
                      help="a HAM10000 folder (CSV + images); default: synthetic lesions")
    demo.add_argument("--max-images", type=int, default=1500,
                      help="subsample whole lesions to about this many images (0: all)")
    demo.add_argument("--n-synthetic", type=int, default=300,
                      help="synthetic images to make when --data is not given")
    demo.add_argument("--folds", type=int, default=3)
    demo.add_argument("--backbone", default="tf_efficientnet_lite0")
    demo.add_argument("--image-size", type=int, nargs=2, default=(96, 128),
                      metavar=("H", "W"))
    demo.add_argument("--freeze", default="backbone",
                      help="'backbone' (train the head), 'none' (fine-tune all) or N epochs")
    demo.add_argument("--epochs", type=int, default=3)
    demo.add_argument("--batch-size", type=int, default=32)
    demo.add_argument("--lr", type=float, default=3e-3)
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--out", metavar="DIR",
                      help="also write metrics.json, report.csv and PNGs of the held-out report")
    demo.add_argument("--quiet", action="store_true", help="print only the results")
    demo.set_defaults(func=cmd_demo)

    bb = sub.add_parser("backbones", help="the backbone registry and available weights")
    bb.add_argument("--include", help="only names containing this text")
    bb.add_argument("--quiet", action="store_true")
    bb.set_defaults(func=cmd_backbones)

    train = sub.add_parser("train", help="train a LesionClassifier and save it")
    _add_training_options(train)
    train.add_argument("--out", metavar="MODEL", required=True, help="model file to write")
    train.set_defaults(func=cmd_train)

    pred = sub.add_parser("predict", help="class probabilities for images")
    pred.add_argument("--model", required=True, help="a file from `skderm train`")
    pred.add_argument("images", nargs="+", metavar="IMAGE_OR_DIR",
                      help="image files, or folders of .jpg/.jpeg/.png images")
    pred.add_argument("--csv", metavar="OUT", help="write here instead of to stdout")
    pred.add_argument("--format", choices=("plain", "isic"), default="plain",
                      help="'isic': the ISIC 2018 Task 3 submission format")
    pred.add_argument("--metadata", metavar="CSV",
                      help="for models that read metadata (age, sex, ...): a CSV with an "
                           "image_id column (file names without extension) and those columns, "
                           "such as HAM10000_metadata.csv")
    pred.add_argument("--quiet", action="store_true")
    pred.set_defaults(func=cmd_predict)

    ev = sub.add_parser("evaluate", help="score a saved model on a HAM10000 folder")
    ev.add_argument("--model", required=True, help="a file from `skderm train`")
    ev.add_argument("--data", metavar="DIR", required=True, help="a HAM10000 folder")
    ev.add_argument("--out", metavar="REPORT_DIR", required=True,
                    help="folder for metrics.json, report.csv and plots")
    ev.add_argument("--quiet", action="store_true")
    ev.set_defaults(func=cmd_evaluate)

    cv = sub.add_parser("cv", help="lesion-grouped stratified cross-validation")
    _add_training_options(cv)
    cv.add_argument("--folds", type=int, default=5)
    cv.add_argument("--out", metavar="DIR", help="folder for results.csv and learning curves")
    cv.set_defaults(func=cmd_cv)
    return parser


def _freeze_arg(value: str):
    return int(value) if value.isdigit() else value


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if hasattr(args, "freeze"):
        args.freeze = _freeze_arg(args.freeze)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("skderm: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # one clear line unless --debug
        if args.debug or os.environ.get("SKDERM_DEBUG"):
            raise
        message = " ".join(str(exc).split())  # one line, however the error was worded
        print(f"skderm: error: {message}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
