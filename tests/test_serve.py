"""skderm.serve: the page's HTTP endpoints against a tiny saved model, on loopback only."""

from __future__ import annotations

import base64
import http.client
import io
import json
import queue
import re
import subprocess
import sys
import threading
import urllib.error
import urllib.request

import numpy as np
import pandas as pd
import pytest
from _browser import Browser, find_chromium
from PIL import Image
from sklearn.ensemble import VotingClassifier

from skderm import LesionClassifier, LesionLevelClassifier, load_model, save_model
from skderm.exceptions import ModelFileError
from skderm.persistence import model_digest
from skderm.serve import MAX_UPLOAD_BYTES, ServeError, make_app, make_server_for, serve

METADATA = ["age", "sex", "localization"]
TIMEOUT = 60


def _tiny(**params):
    params = {"backbone": "tiny", "weights": None, "image_size": (48, 64), "max_epochs": 1,
              "valid_size": None, "verbose": 0, "random_state": 0, "batch_size": 16, **params}
    return LesionClassifier(**params)


def _saved(model, tmp_path_factory, name):
    path = tmp_path_factory.mktemp("serve_model") / f"{name}.skderm"
    save_model(model, path)
    return load_model(path)


@pytest.fixture(scope="module")
def running(tiny_lesions):
    """Start a server for ``model`` on 127.0.0.1, a free port, in a thread; stop it after."""
    servers = []

    def start(model):
        server = make_server_for(model, "127.0.0.1", 0)
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1},
                                  daemon=True)
        thread.start()
        servers.append((server, thread))
        return f"http://127.0.0.1:{server.server_port}"

    yield start
    for server, thread in servers:
        server.shutdown()
        server.server_close()
        thread.join(timeout=TIMEOUT)


@pytest.fixture(scope="module")
def plain(tiny_lesions, tmp_path_factory, running):
    X, y = tiny_lesions.data, tiny_lesions.target
    model = _saved(_tiny().fit(X.path.iloc[:40].tolist(), y[:40]), tmp_path_factory, "plain")
    return model, running(model)


@pytest.fixture(scope="module")
def lesion_level(tiny_lesions, tmp_path_factory, running):
    """Metadata fused into the head, decided with a prior shift."""
    X, y = tiny_lesions.data, tiny_lesions.target
    model = LesionLevelClassifier(_tiny(metadata_columns=METADATA), prior_shift=1.0)
    model = _saved(model.fit(X.iloc[:40], y[:40]), tmp_path_factory, "lesion_level")
    return model, running(model)


def _multipart(files: dict, fields: dict | None = None) -> tuple[bytes, str]:
    boundary = "skderm-test-boundary"
    out = []
    for name, value in (fields or {}).items():
        out.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
                   f"{value}\r\n".encode())
    for name, (filename, data, ctype) in files.items():
        out.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
                   f'filename="{filename}"\r\nContent-Type: {ctype}\r\n\r\n'.encode()
                   + data + b"\r\n")
    out.append(f"--{boundary}--\r\n".encode())
    return b"".join(out), f"multipart/form-data; boundary={boundary}"


def _post(url, data: bytes, ctype: str) -> tuple[int, dict]:
    request = urllib.request.Request(url, data=data, headers={"Content-Type": ctype})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as exc:
        with exc:
            assert exc.headers["Content-Type"] == "application/json"
            return exc.code, json.load(exc)


def _upload(base, filename, data, ctype="image/jpeg", fields=None):
    body, content_type = _multipart({"image": (filename, data, ctype)}, fields)
    return _post(base + "/predict", body, content_type)


def _get(url) -> tuple[int, str, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT) as response:
            return response.status, response.headers["Content-Type"], response.read()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.headers["Content-Type"], exc.read()


def test_the_page_is_one_self_contained_html_file(plain):
    _, base = plain
    status, ctype, body = _get(base + "/")
    page = body.decode()
    assert status == 200 and ctype.startswith("text/html")
    assert '<input type="file"' in page and 'id="drop"' in page and "fetch(\"/predict\"" in page
    assert "http://" not in page and "https://" not in page and "src=\"//" not in page


def test_health_describes_the_model(plain):
    model, base = plain
    status, _, body = _get(base + "/health")
    info = json.loads(body)
    assert status == 200 and info["status"] == "ok"
    assert info["classes"] == model.classes_.tolist() and info["metadata_columns"] == []
    assert info["max_upload_bytes"] == MAX_UPLOAD_BYTES


def test_a_jpeg_gets_predict_probas_probabilities_decision_and_saliency(plain, tiny_lesions):
    model, base = plain
    path = tiny_lesions.data.path.iloc[45]
    status, answer = _upload(base, "lesion.jpg", open(path, "rb").read())
    assert status == 200, answer
    proba = np.asarray(answer["probabilities"])
    assert answer["classes"] == model.classes_.tolist()
    assert proba.sum() == pytest.approx(1.0, abs=1e-5)
    np.testing.assert_allclose(proba, model.predict_proba([path])[0], atol=1e-5)
    assert answer["label"] == model.predict([path])[0]
    assert answer["decided_by"] == "argmax of the probabilities"
    overlay = Image.open(io.BytesIO(base64.b64decode(answer["saliency_png_base64"])))
    assert overlay.format == "PNG" and overlay.size == (64, 48)
    assert "metadata_missing" not in answer


def test_the_raw_body_is_an_upload_too(plain, tiny_lesions):
    model, base = plain
    path = tiny_lesions.data.path.iloc[46]
    status, answer = _post(base + "/predict?filename=x.jpg", open(path, "rb").read(),
                           "image/jpeg")
    assert status == 200, answer
    np.testing.assert_allclose(answer["probabilities"], model.predict_proba([path])[0],
                               atol=1e-5)


@pytest.mark.parametrize("filename, data, ctype", [
    ("notes.txt", b"age 45, back, itchy for a month\n", "text/plain"),
    ("lesion.jpg", bytes(range(256)) * 40, "image/jpeg"),
    ("empty.png", b"", "image/png"),
])
def test_what_is_not_an_image_is_refused_with_a_message(plain, filename, data, ctype):
    _, base = plain
    status, answer = _upload(base, filename, data, ctype)
    assert status == 400
    assert f"{filename!r} is not an image" in answer["error"]
    assert "Traceback" not in answer["error"] and "skderm-serve-" not in answer["error"]


def test_a_form_without_a_file_is_refused(plain):
    _, base = plain
    body, ctype = _multipart({}, {"age": "40"})
    status, answer = _post(base + "/predict", body, ctype)
    assert status == 400 and "field named 'image'" in answer["error"]


def test_an_oversize_upload_is_refused_before_it_is_read(plain):
    _, base = plain
    port = int(base.rsplit(":", 1)[1])
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
    try:
        conn.putrequest("POST", "/predict")
        conn.putheader("Content-Type", "image/jpeg")
        conn.putheader("Content-Length", str(MAX_UPLOAD_BYTES + 1))
        conn.endheaders()
        response = conn.getresponse()
        answer = json.loads(response.read())
    finally:
        conn.close()
    assert response.status == 413
    assert str(MAX_UPLOAD_BYTES + 1) in answer["error"] and "20 MiB" in answer["error"]


@pytest.mark.parametrize("path, status", [("/predict", 405), ("/admin", 404)])
def test_other_routes_answer_json_errors(plain, path, status):
    _, base = plain
    got, ctype, body = _get(base + path)
    assert got == status and ctype == "application/json" and json.loads(body)["error"]


def test_lesion_level_model_decides_with_its_prior_shift_and_names_missing_metadata(
        lesion_level, tiny_lesions):
    model, base = lesion_level
    path = tiny_lesions.data.path.iloc[47]
    status, answer = _upload(base, "lesion.jpg", open(path, "rb").read(), fields={"age": "55"})
    assert status == 200, answer
    assert answer["metadata_missing"] == ["sex", "localization"]
    assert "sex, localization" in answer["metadata_note"] and "imputed" in answer["metadata_note"]
    X = pd.DataFrame({"path": [path], "age": [55.0], "sex": [None], "localization": [None]})
    expected = model.estimator_.predict_proba(X)
    np.testing.assert_allclose(answer["probabilities"], expected[0], atol=1e-5)
    assert answer["label"] == model.decide(expected)[0]
    assert "prior_shift = 1" in answer["decided_by"]


def test_health_lists_the_metadata_fields_and_known_categories(lesion_level, tiny_lesions):
    _, base = lesion_level
    info = json.loads(_get(base + "/health")[2])
    assert info["kind"] == "lesion-level" and info["metadata_columns"] == METADATA
    assert info["numeric_metadata"] == ["age"]
    seen = tiny_lesions.data.iloc[:40]
    assert set(info["categories"]["sex"]) == set(seen.sex.dropna())


def test_an_unseen_category_is_predicted_and_named(lesion_level, tiny_lesions):
    _, base = lesion_level
    data = open(tiny_lesions.data.path.iloc[47], "rb").read()
    status, answer = _upload(base, "lesion.jpg", data,
                             fields={"age": "55", "sex": "male", "localization": "moon"})
    assert status == 200, answer
    assert answer["metadata_missing"] == []
    assert "localization='moon' was not seen in training" in answer["metadata_note"]


def test_a_bad_metadata_value_is_refused_by_name(lesion_level, tiny_lesions):
    _, base = lesion_level
    data = open(tiny_lesions.data.path.iloc[47], "rb").read()
    status, answer = _upload(base, "lesion.jpg", data, fields={"age": "fifty"})
    assert status == 400 and "'age'" in answer["error"] and "'fifty'" in answer["error"]


def test_a_soft_vote_explains_its_first_member_and_says_so(tiny_lesions):
    X, y = tiny_lesions.data.path.iloc[:40].tolist(), tiny_lesions.target[:40]
    vote = VotingClassifier([("a", _tiny()), ("b", _tiny(random_state=1))], voting="soft")
    vote.fit(X, y)
    app = make_app(vote)
    path = tiny_lesions.data.path.iloc[48]
    body, ctype = _multipart({"image": ("v.jpg", open(path, "rb").read(), "image/jpeg")})
    environ = {"REQUEST_METHOD": "POST", "PATH_INFO": "/predict", "CONTENT_TYPE": ctype,
               "CONTENT_LENGTH": str(len(body)), "wsgi.input": io.BytesIO(body)}
    started = []
    answer = json.loads(b"".join(app(environ, lambda s, h: started.append(s))))
    assert started == ["200 OK"], answer
    np.testing.assert_allclose(answer["probabilities"], vote.predict_proba([path])[0],
                               atol=1e-5)
    assert answer["label"] == vote.predict([path])[0]
    assert "first member" in answer["saliency"] and answer["saliency_png_base64"]


def test_only_what_load_model_returns_is_served(tiny_lesions):
    from sklearn.exceptions import NotFittedError
    from sklearn.linear_model import LogisticRegression

    with pytest.raises(TypeError, match="needs a fitted LesionClassifier.*LogisticRegression"):
        make_app(LogisticRegression())
    with pytest.raises(NotFittedError):
        make_app(VotingClassifier([("a", _tiny())], voting="soft"))


def test_a_taken_port_is_refused_with_the_address(plain):
    model, base = plain
    port = int(base.rsplit(":", 1)[1])
    with pytest.raises(ServeError, match=f"127.0.0.1:{port}.*another port"):
        make_server_for(model, "127.0.0.1", port)


no_chromium = pytest.mark.skipif(
    find_chromium() is None, reason="no chromium or chromium-browser on PATH for the headless "
                                    "browser tests")


@no_chromium
@pytest.mark.parametrize("fitted", ["plain", "lesion_level"])
def test_the_page_loads_in_a_headless_browser_without_console_errors(fitted, request, tmp_path):
    model, base = request.getfixturevalue(fitted)
    result = subprocess.run(
        [find_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         f"--user-data-dir={tmp_path / 'profile'}", "--enable-logging=stderr", "--v=0",
         "--virtual-time-budget=5000", "--dump-dom", base + "/"],
        capture_output=True, text=True, timeout=120)
    console = [line for line in result.stderr.splitlines() if "CONSOLE" in line]
    assert result.returncode == 0, result.stderr[-2000:]
    assert not console, console
    # the script ran: it read /health and wrote the model's classes into the page
    assert f"classes: {', '.join(model.classes_)}" in result.stdout
    if fitted == "lesion_level":  # a field per metadata column, known categories to pick
        age = re.search(r'<input[^>]*name="age"[^>]*>', result.stdout)
        assert age and 'type="number"' in age.group(0), result.stdout
        assert '<select name="sex">' in result.stdout, result.stdout


def test_serve_loads_a_checked_file_and_listens_on_loopback(plain, tmp_path):
    model, _ = plain
    path = tmp_path / "served.skderm"
    save_model(model, path)
    script = ("import sys; from skderm.serve import serve; "
              "serve(sys.argv[1], port=0, sha256=sys.argv[2])")
    process = subprocess.Popen([sys.executable, "-c", script, str(path), model_digest(path)],
                               stderr=subprocess.PIPE, text=True)
    lines = queue.Queue()
    threading.Thread(target=lambda: [lines.put(x) for x in process.stderr], daemon=True).start()
    try:
        seen = []
        while not (seen and seen[-1].startswith("serving")):
            seen.append(lines.get(timeout=TIMEOUT))  # raises queue.Empty when nothing comes
        url = re.search(r"http://127\.0\.0\.1:(\d+)/", seen[-1])
        assert url, seen
        status, _, body = _get(url.group(0) + "health")
        assert status == 200 and json.loads(body)["classes"] == model.classes_.tolist()
    finally:
        process.terminate()
        process.wait(timeout=TIMEOUT)
        process.stderr.close()


def test_serve_refuses_a_file_that_does_not_match_its_digest(plain, tmp_path):
    model, _ = plain
    path = save_model(model, tmp_path / "served.skderm")
    with pytest.raises(ModelFileError):
        serve(path, port=0, sha256="0" * 64)


@no_chromium
def test_an_image_chosen_on_the_page_shows_probabilities_decision_and_overlay(
        lesion_level, tiny_lesions, tmp_path):
    model, base = lesion_level
    path = tiny_lesions.data.path.iloc[47]
    text = tmp_path / "notes.txt"
    text.write_text("not a picture\n")
    with Browser(tmp_path / "profile", timeout=TIMEOUT) as page:
        page.open(base + "/")
        page.wait_for('document.querySelector("#fields select[name=sex]")')
        page.evaluate('document.querySelector("#fields input[name=age]").value = "55"')
        page.set_file("#file", path)
        label = page.wait_for('document.getElementById("label").textContent')
        X = pd.DataFrame({"path": [path], "age": [55.0], "sex": [None],
                          "localization": [None]})
        expected = model.estimator_.predict_proba(X)[0]
        assert label == model.decide(expected[None])[0]
        shown = page.evaluate('[...document.querySelectorAll("#probs tr")]'
                              '.map(r => r.cells[1].textContent)')
        assert shown == [f"{100 * p:.1f} %" for p in expected]
        assert page.evaluate('document.getElementById("overlay").src')\
            .startswith("data:image/png;base64,")
        assert "sex, localization" in page.evaluate(
            'document.getElementById("metanote").textContent')
        assert page.errors == []

        page.set_file("#file", text)
        error = page.wait_for('document.getElementById("error").textContent.includes('
                              '"not an image") && document.getElementById("error").textContent')
        assert error.startswith("'notes.txt' is not an image")
        assert page.evaluate('document.getElementById("result").hidden') is True
        # the refused upload's HTTP 400 is the only thing the browser logs
        assert all("status of 400" in e for e in page.errors), page.errors
