"""Tiny random encoders for tests (character-level WordPiece, 2 layers, 32 dims): a BERT folder, and a
sentence-transformers model on it."""

from __future__ import annotations

import string
from pathlib import Path

PIECES = list(string.ascii_lowercase + string.digits + string.punctuation)


def make_tiny_bert(path: Path, initializer_range: float = 1.0) -> Path:
    """Save a random-weight 2-layer BERT (hidden 32) and its character-level tokenizer at ``path``."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizer

    path.mkdir(parents=True)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + PIECES + [f"##{p}" for p in PIECES]
    BertTokenizer(vocab={piece: i for i, piece in enumerate(vocab)}).save_pretrained(path)
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=512, initializer_range=initializer_range,
    )
    BertModel(config).save_pretrained(path)
    return path


def make_tiny_embedder(path: Path) -> Path:
    """Save a random-weight BERT + mean pooling as a sentence-transformers folder at ``path``."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Pooling, Transformer

    hf_dir = make_tiny_bert(path.parent / f"{path.name}-hf")
    model = SentenceTransformer(modules=[Transformer(str(hf_dir)), Pooling(32)], device="cpu")
    model.save(str(path))
    return path


def train_tiny_classifier(records: list[dict], root: Path, labels: list[str], epochs: int, batch_size: int) -> Path:
    """A classifier on a tiny BERT (``root/bert``) fitted to ``records``, saved at ``root/clf``."""
    import torch

    from relcli.classifier import train_classifier

    torch.set_num_threads(1)
    base = make_tiny_bert(root / "bert", initializer_range=0.02)
    train_classifier(records, str(base), root / "clf", labels=labels, pooling="entity-start", epochs=epochs, lr=3e-3,
                     batch_size=batch_size, warmup_ratio=0.0, dropout=0.0, dtype="float32", device="cpu")
    return root / "clf"
