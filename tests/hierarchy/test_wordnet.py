import os
import shutil
import subprocess
import sys

import pytest

import hierarchy
from hierarchy import UnknownClassError, WordNetNotFoundError, load_wordnet, synset_from_wnid, wnid_of

DEBIAN = "/usr/share/wordnet"


def test_tench_wnid_round_trip(wordnet):
    tench = synset_from_wnid("n01440764", wordnet)
    assert tench.name() == "tench.n.01"
    assert wnid_of(tench) == "n01440764"
    assert wordnet.get_version() == "3.0"


@pytest.mark.parametrize("bad", ["n0144076", "x01440764", "01440764n", "", "n0144076a"])
def test_malformed_wnid(wordnet, bad):
    with pytest.raises(UnknownClassError, match="not a wnid"):
        synset_from_wnid(bad, wordnet)


def test_unknown_offset(wordnet):
    with pytest.raises(UnknownClassError, match="unknown wnid 'n00000001'"):
        synset_from_wnid("n00000001", wordnet)


def test_missing_path_says_how_to_install(tmp_path):
    with pytest.raises(WordNetNotFoundError, match="nltk.downloader wordnet"):
        load_wordnet(tmp_path / "nowhere")


def test_dir_without_dict_files(tmp_path):
    with pytest.raises(WordNetNotFoundError, match="lacks data.noun"):
        load_wordnet(tmp_path)


@pytest.mark.skipif(not os.path.isdir(DEBIAN), reason="needs a raw WordNet dict directory")
def test_raw_dict_dir_without_lexnames(tmp_path):
    # A copy of the Debian files: no lexnames, not registered with nltk.
    for name in os.listdir(DEBIAN):
        if name.startswith(("data.", "index.", "")) and os.path.isfile(os.path.join(DEBIAN, name)):
            shutil.copy(os.path.join(DEBIAN, name), tmp_path / name)
    assert not (tmp_path / "lexnames").exists()
    wn = load_wordnet(tmp_path)
    assert wn.synset("tench.n.01").lexname() == "noun.animal"


@pytest.mark.skipif(not os.path.isdir(DEBIAN), reason="needs a raw WordNet dict directory")
def test_other_wordnet_version_is_refused(tmp_path):
    for name in os.listdir(DEBIAN):
        if os.path.isfile(os.path.join(DEBIAN, name)):
            shutil.copy(os.path.join(DEBIAN, name), tmp_path / name)
    data = (tmp_path / "data.adj").read_bytes()
    assert b"WordNet 3.0 Copyright" in data
    (tmp_path / "data.adj").write_bytes(data.replace(b"WordNet 3.0 Copyright", b"WordNet 3.1 Copyright"))
    with pytest.raises(WordNetNotFoundError, match="version 3.1"):
        load_wordnet(tmp_path)


@pytest.mark.subprocess
def test_env_var_overrides(tmp_path):
    code = "import hierarchy; hierarchy.load_wordnet()"
    env = dict(os.environ, SUPERSUB_WORDNET=str(tmp_path / "missing"))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode != 0
    assert "SUPERSUB_WORDNET" in out.stderr and "does not exist" in out.stderr


@pytest.mark.subprocess
def test_shipped_tree_needs_no_wordnet(tmp_path):
    code = (
        "import hierarchy; t = hierarchy.shipped_tree('tiny-imagenet-200');"
        "print(len(t.classes), len(t.superclasses))"
    )
    env = dict(os.environ, SUPERSUB_WORDNET=str(tmp_path / "missing"))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["200", "10"]
    assert hierarchy.shipped_path("imagenet-1k", "wnids.txt").is_file()
