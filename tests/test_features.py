"""BackboneFeatures: frozen embeddings as an sklearn transformer."""

import numpy as np
import pandas as pd
import pytest
from imblearn.over_sampling import SMOTE
from imblearn.pipeline import make_pipeline as make_imb_pipeline
from sklearn.base import clone
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, StratifiedGroupKFold, cross_val_score
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from skderm.features import BackboneFeatures, clear_embedding_cache, embedding_cache_info

LITE = dict(backbone="tf_efficientnet_lite0", image_size=(32, 40), batch_size=32)


def test_shapes_names_and_determinism(tiny_lesions):
    X = tiny_lesions.data
    feats = BackboneFeatures(**LITE).fit(X)
    Z = feats.transform(X)
    assert Z.shape == (len(X), 1280) and Z.dtype == np.float32
    assert np.isfinite(Z).all()
    assert feats.get_feature_names_out()[0] == "tf_efficientnet_lite0_0"
    clear_embedding_cache()
    np.testing.assert_allclose(feats.transform(X), Z, rtol=1e-5, atol=1e-6)
    # a list of paths and a Series give the same embeddings as the DataFrame
    np.testing.assert_allclose(feats.transform(X["path"].tolist()[:5]), Z[:5], atol=1e-5)


def test_pretrained_embeddings_differ_from_random(tiny_lesions):
    X = tiny_lesions.data[:8]
    pre = BackboneFeatures(**LITE).fit().transform(X)
    rand = BackboneFeatures(**LITE, weights=None).fit().transform(X)
    assert not np.allclose(pre, rand)


def test_tta_averages_flips(tiny_lesions):
    X = tiny_lesions.data[:6]
    plain = BackboneFeatures(**LITE).fit().transform(X)
    tta = BackboneFeatures(**LITE, tta=True).fit().transform(X)
    assert tta.shape == plain.shape and not np.allclose(tta, plain)


def test_embedding_cache_embeds_each_image_once_in_a_grid(lesions):
    X, y, groups = lesions.data, lesions.target, lesions.groups
    clear_embedding_cache()
    pipe = make_pipeline(BackboneFeatures(**LITE), StandardScaler(),
                         LogisticRegression(max_iter=300))
    grid = GridSearchCV(pipe, {"logisticregression__C": [0.1, 1.0, 10.0]},
                        cv=StratifiedGroupKFold(3), scoring="balanced_accuracy")
    grid.fit(X, y, groups=groups)
    info = embedding_cache_info()
    # 3 candidates x 3 folds x (train + test) + refit, yet each image is embedded once
    assert info["misses"] == len(X)
    assert info["hits"] > 5 * len(X)


def test_pipeline_memory_reuses_fold_embeddings(lesions, tmp_path, monkeypatch):
    """Pipeline(memory=...) caches fit_transform: one embedding pass per fold, not per candidate."""
    calls = []
    original = BackboneFeatures._embed

    def counting(self, images):
        calls.append(len(images))
        return original(self, images)

    monkeypatch.setattr(BackboneFeatures, "_embed", counting)
    X, y, groups = lesions.data, lesions.target, lesions.groups
    # weights=None disables the per-image cache, so only Pipeline memory can save work
    pipe = Pipeline([("emb", BackboneFeatures(**dict(LITE, weights=None))),
                     ("clf", LogisticRegression(max_iter=200))], memory=str(tmp_path))
    cv = list(StratifiedGroupKFold(3).split(X, y, groups))
    train_sizes = {len(tr) for tr, _ in cv}
    assert not train_sizes & {len(te) for _, te in cv}  # tell fit passes from test passes
    GridSearchCV(pipe, {"clf__C": [0.1, 1.0, 10.0]}, cv=cv, refit=False).fit(X, y)
    n_fit_passes = sum(1 for n in calls if n in train_sizes)
    assert n_fit_passes == 3  # one per fold, not 3 candidates x 3 folds


def test_metadata_fusion_with_column_transformer_and_smote(lesions):
    X, y, groups = lesions.data, lesions.target, lesions.groups
    fusion = ColumnTransformer([
        ("image", BackboneFeatures(**LITE), ["path"]),
        ("cat", OneHotEncoder(handle_unknown="ignore"), ["sex", "localization"]),
        ("age", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), ["age"]),
    ])
    pipe = make_imb_pipeline(fusion, StandardScaler(), SMOTE(k_neighbors=2, random_state=0),
                             LogisticRegression(max_iter=500, class_weight="balanced"))
    scores = cross_val_score(pipe, X, y, groups=groups, cv=StratifiedGroupKFold(3),
                             scoring="balanced_accuracy")
    # ImageNet features on the synthetic lesions: far above chance (1/7)
    assert scores.mean() > 0.5
    # unseen localization at predict time does not break the fitted pipeline
    pipe.fit(X, y)
    X_new = X.iloc[:3].copy()
    X_new["localization"] = "nowhere-seen"
    X_new.loc[X_new.index[0], "age"] = np.nan
    assert len(pipe.predict(X_new)) == 3


def test_clone_and_params():
    feats = BackboneFeatures(backbone="tiny", weights=None, batch_size=8)
    c = clone(feats)
    assert c.get_params() == feats.get_params()
    with pytest.raises(ValueError, match="batch_size"):
        BackboneFeatures(backbone="tiny", weights=None, batch_size=0).fit()
    with pytest.raises(ValueError, match="unknown backbone 'nope'"):
        BackboneFeatures(backbone="nope").fit()


def test_transform_before_fit_and_bad_input(tiny_lesions):
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        BackboneFeatures(backbone="tiny", weights=None).transform(tiny_lesions.data)
    feats = BackboneFeatures(backbone="tiny", weights=None, image_size=16).fit()
    with pytest.raises(ValueError, match="no image-path column 'path'"):
        feats.transform(pd.DataFrame({"file": ["a.jpg"]}))
    from skderm.exceptions import ImageError

    with pytest.raises(ImageError, match="missing.jpg"):
        feats.transform(["/nonexistent/missing.jpg"])


def test_in_memory_uint8_images():
    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 255, size=(4, 20, 30, 3), dtype=np.uint8)
    Z = BackboneFeatures(backbone="tiny", weights=None, image_size=16).fit().transform(imgs)
    assert Z.shape == (4, 64)


def test_colour_constancy_embeds_the_corrected_images_and_is_cached_apart(tiny_lesions):
    import torch

    from skderm.images import load_images
    from skderm.transforms import colour_constancy

    X = tiny_lesions.data[:6]
    clear_embedding_cache()
    plain = BackboneFeatures(**LITE).fit().transform(X)
    feats = BackboneFeatures(**LITE, colour_constancy="shades_of_gray").fit()
    cc = feats.transform(X)  # the plain embeddings are cached: they must not be served
    pixels = torch.from_numpy(np.stack(load_images(X["path"], LITE["image_size"])))
    with torch.inference_mode():
        expected = feats.module_.features(colour_constancy(pixels.permute(0, 3, 1, 2), 6))
    np.testing.assert_allclose(cc, expected.numpy(), rtol=1e-4, atol=1e-4)
    assert not np.allclose(cc, plain, atol=1e-3)
    np.testing.assert_array_equal(feats.transform(X), cc)  # and then from the cache
    with pytest.raises(ValueError, match=r"BackboneFeatures colour_constancy='grey' is not "
                                         r"valid; use None \(off\)"):
        BackboneFeatures(**LITE, colour_constancy="grey").fit()


@pytest.mark.parametrize("final", ["svc", "hgb"])
def test_fusion_with_other_downstream_models(lesions, final):
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.svm import SVC

    X, y, groups = lesions.data, lesions.target, lesions.groups
    fusion = ColumnTransformer([
        ("image", BackboneFeatures(**LITE), ["path"]),
        ("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=False),
         ["sex", "localization"]),
        ("age", "passthrough", ["age"]),  # HistGradientBoosting handles NaN ages itself
    ])
    model = (make_pipeline(fusion, SimpleImputer(strategy="median"), StandardScaler(),
                           SVC(class_weight="balanced", random_state=0))
             if final == "svc" else
             make_pipeline(fusion, HistGradientBoostingClassifier(max_iter=15, max_bins=32, random_state=0)))
    scores = cross_val_score(model, X, y, groups=groups, cv=StratifiedGroupKFold(3),
                             scoring="balanced_accuracy")
    assert scores.mean() > 0.4  # chance is 1/7
