"""Evaluation beside the product: LFW protocols and metrics, saliency faithfulness, QA sets, benchmarks."""
