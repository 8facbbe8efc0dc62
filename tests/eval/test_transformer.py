"""The HF encoder classifier with a tiny random BERT and a WordPiece vocabulary built from the notes."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory, small_split):
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers
    from transformers import BertConfig, BertForSequenceClassification, PreTrainedTokenizerFast

    train, _ = small_split
    path = tmp_path_factory.mktemp("tiny-bert")
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tok.train_from_iterator(
        [n["text"] for n in train], trainers.WordPieceTrainer(vocab_size=800, special_tokens=special)
    )
    from tokenizers.processors import TemplateProcessing

    tok.post_processor = TemplateProcessing(
        single="[CLS] $A [SEP]",
        special_tokens=[("[CLS]", tok.token_to_id("[CLS]")), ("[SEP]", tok.token_to_id("[SEP]"))],
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]", sep_token="[SEP]",
        mask_token="[MASK]",
    )  # fmt: skip
    fast.save_pretrained(path)
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(fast), hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
        max_position_embeddings=256, pad_token_id=fast.pad_token_id,
    )  # fmt: skip
    BertForSequenceClassification(config).save_pretrained(path)
    return path


def _initial(path):
    from transformers import BertForSequenceClassification

    model = BertForSequenceClassification.from_pretrained(path, num_labels=6, ignore_mismatched_sizes=True)
    return {k: v for k, v in model.state_dict().items() if k.startswith("bert.")}


def test_fine_tunes_and_scores(tiny_bert, small_split):
    from medsyn.eval.transformer import TransformerClassifier

    train, dev = small_split
    train = train[::3]  # 80 notes, 6 codes: 5 steps an epoch
    clf = TransformerClassifier(model=str(tiny_bert), epochs=4, batch_size=16, learning_rate=3e-3, max_length=48)
    clf.fit([n["text"] for n in train], [n["code"] for n in train])
    trained = clf.model.state_dict()
    assert any(not torch.equal(trained[k], v) for k, v in _initial(tiny_bert).items())  # the encoder was trained
    assert clf.labels_ == sorted({n["code"] for n in train})
    first, last = np.mean(clf.losses_[:5]), np.mean(clf.losses_[-5:])
    assert last < first  # the loss went down
    proba = clf.predict_proba([n["text"] for n in dev])
    assert proba.shape == (len(dev), 6)
    assert clf.predict_proba([]).shape == (0, 6)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
    assert len(clf.predict([dev[0]["text"]])) == 1


def test_same_interface_through_make_classifier(tiny_bert):
    from medsyn.eval.classify import make_classifier
    from medsyn.eval.transformer import TransformerClassifier

    clf = make_classifier(str(tiny_bert), transformer_options={"epochs": 1})
    assert isinstance(clf, TransformerClassifier) and clf.config.epochs == 1


def test_a_hub_model_offline_gets_a_way_out(monkeypatch):
    from medsyn.errors import MedsynError
    from medsyn.eval.transformer import TransformerClassifier, TransformerConfig

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    clf = TransformerClassifier(TransformerConfig(model="DeepPavlov/rubert-base-cased", epochs=1))
    with pytest.raises(MedsynError, match="cannot be downloaded.*pass --model DIR"):
        clf.fit(["кашель", "боль в спине"], ["J06", "M54"])
