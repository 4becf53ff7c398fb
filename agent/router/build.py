"""Build the classifier routing.yaml asks for, chosen from a table (imports stay lazy: no model, no onnxruntime)."""

from __future__ import annotations

from pathlib import Path

from agent.llm import ChatModel, PriceBook
from agent.router.classifier import Classifier
from agent.router.errors import ClassifierUnavailable
from agent.router.policy import RoutingPolicy


def build_classifier(
    policy: RoutingPolicy,
    *,
    models_dir: Path,
    chat_model: ChatModel | None = None,
    prices: PriceBook | None = None,
) -> Classifier | None:
    """The configured classifier, or None for mode 'none'.

    Raises:
        ClassifierUnavailable: mode 'offline' without the installed model, or mode 'model' without a
            chat model and prices. The caller may route anyway: `route` then uses the strongest tier.
    """
    mode = policy.classifier.mode
    if mode == "none":
        return None
    if mode == "model":
        if chat_model is None or prices is None:
            raise ClassifierUnavailable("classifier.mode is 'model' but no routing model was configured")
        from agent.router.classifier import ModelClassifier

        return ModelClassifier(chat_model, policy, prices)
    from agent.router.classifier import KnnClassifier, load_examples, load_params
    from agent.router.embedder import MiniLM

    return KnnClassifier(
        MiniLM.load(models_dir), load_examples(), load_params(), policy, cache_dir=models_dir / "router"
    )
