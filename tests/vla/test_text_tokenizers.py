from pathlib import Path

import pytest
from tokenizers import Tokenizer
from transformers import PreTrainedTokenizerFast

from vla.text import BPETokenizer, ByteTokenizer, HFTokenizer

TEXTS = ["touch the red cube", "touch the blue ball", "reach the green cylinder"] * 5
ODD = "Touch the ÜBER-violet 立方体 ✓"


def test_byte_tokenizer_round_trip_and_added_tokens(tmp_path: Path) -> None:
    tok = ByteTokenizer()
    ids = tok.encode(ODD)
    assert max(ids) < 256 and tok.decode(ids) == ODD
    added = tok.add_tokens(["<act_0>", "<act_1>"])
    assert added == [258, 259] and tok.add_tokens(["<act_1>"]) == [259]  # idempotent
    assert tok.vocab_size == 260
    assert tok.decode([104, 105, 259]) == "hi<act_1>"
    tok.save_pretrained(tmp_path)
    again = ByteTokenizer(path=str(tmp_path))
    assert again.add_tokens(["<act_0>", "<act_1>"]) == added


def test_bpe_is_bytes_before_fit_and_shorter_after() -> None:
    tok = BPETokenizer(vocab_size=300)
    before = tok.encode("touch the red cube")
    assert len(before) == len(" touch the red cube")  # prefix space + bytes
    acts = tok.add_tokens(["<act_0>", "<act_1>"])
    assert acts == [300, 301]
    tok.fit(TEXTS)
    after = tok.encode("touch the red cube")
    assert len(after) <= 5
    assert tok.decode(after) == "touch the red cube"
    assert tok.add_tokens(["<act_1>"]) == [301]  # added ids survive the fit
    assert max(after) < 300 and tok.vocab_size == 302


def test_bpe_handles_unseen_words_with_byte_fallback() -> None:
    tok = BPETokenizer(vocab_size=300, lowercase=False)
    tok.fit(TEXTS)
    ids = tok.encode(ODD)
    assert all(0 <= i < 300 for i in ids)
    assert tok.decode(ids) == ODD
    lower = BPETokenizer(vocab_size=300)
    lower.fit(TEXTS)
    assert lower.encode("TOUCH the Red cube") == lower.encode("touch the red cube")


def test_bpe_refuses_to_refit_and_validates(tmp_path: Path) -> None:
    tok = BPETokenizer(vocab_size=300)
    tok.fit(TEXTS)
    with pytest.raises(RuntimeError, match="already fitted"):
        tok.fit(TEXTS)
    with pytest.raises(ValueError, match="vocab_size=100"):
        BPETokenizer(vocab_size=100)
    with pytest.raises(ValueError, match="no text"):
        BPETokenizer().fit([])
    with pytest.raises(FileNotFoundError, match="tokenizer.json"):
        BPETokenizer(path=str(tmp_path))


def test_bpe_save_load_gives_identical_ids(tmp_path: Path) -> None:
    tok = BPETokenizer(vocab_size=300)
    tok.add_tokens(["<act_0>"])
    tok.fit(TEXTS)
    tok.save_pretrained(tmp_path)
    again = BPETokenizer(vocab_size=300, path=str(tmp_path))
    assert again.fitted
    for text in [*TEXTS[:3], ODD]:
        assert again.encode(text) == tok.encode(text)
    assert again.add_tokens(["<act_0>"]) == [300]
    with pytest.raises(ValueError, match="vocab_size=512"):
        BPETokenizer(vocab_size=512, path=str(tmp_path))


def save_tiny_hf_tokenizer(folder: Path) -> None:
    """A small byte-level BPE saved the way a pretrained LM's tokenizer is."""
    base = BPETokenizer(vocab_size=300, lowercase=False)
    base.fit(TEXTS)
    inner: Tokenizer = base._tok
    fast = PreTrainedTokenizerFast(tokenizer_object=inner, eos_token="<eos>", pad_token="<pad>")
    fast.save_pretrained(str(folder))


def test_hf_tokenizer_from_local_folder(tmp_path: Path) -> None:
    save_tiny_hf_tokenizer(tmp_path)
    tok = HFTokenizer(path=str(tmp_path))
    n = tok.vocab_size
    ids = tok.add_tokens(["<act_0>", "<act_1>"])
    assert ids == [n, n + 1] and tok.vocab_size == n + 2
    assert tok.add_tokens(["<act_0>"]) == [n]
    text_ids = tok.encode("touch the red cube")
    assert all(i < n for i in text_ids)
    assert "red cube" in tok.decode(text_ids)
    assert tok.pad_id == tok.tokenizer.pad_token_id and tok.eos_id == tok.tokenizer.eos_token_id
    with pytest.raises(FileNotFoundError, match="not a folder"):
        HFTokenizer(path=str(tmp_path / "missing"))


def test_tokenizers_reject_non_strings() -> None:
    for tok in (ByteTokenizer(), BPETokenizer()):
        with pytest.raises(TypeError, match="must be a str"):
            tok.encode(None)  # type: ignore[arg-type]
