from __future__ import annotations

import json

import pytest


def test_loss_falls_and_trainable_parameters_change(tiny_run):
    from accelerate.utils import set_seed

    from medsyn.finetune.train import load_model_for_training

    result, (model_args, _, train_args) = tiny_run
    metrics = result.metrics
    assert metrics["steps"] == 20 and metrics["train_tokens"] > 0
    assert metrics["eval_loss_after"] < metrics["eval_loss_before"] - 0.25
    assert metrics["train_loss_last"] < metrics["train_loss_first"]
    set_seed(train_args.seed)  # train() seeds the same way before creating the adapter
    initial, _ = load_model_for_training(model_args)
    before = {n: p for n, p in initial.named_parameters() if p.requires_grad}
    after = {n: p for n, p in result.model.named_parameters() if p.requires_grad}
    assert before.keys() == after.keys() and all("lora_" in n for n in after)
    changed = [n for n in after if not (before[n].detach() == after[n].detach().cpu()).all()]
    assert changed == list(after)
    frozen_after = dict(result.model.named_parameters())
    frozen_before = dict(initial.named_parameters())
    for name, param in frozen_before.items():
        if not param.requires_grad:
            assert (param == frozen_after[name]).all(), f"frozen {name} changed"


def test_saved_adapter_reloads_to_identical_logits(tiny_run, tiny_lm_dir):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    result, (_, _, train_args) = tiny_run
    base = AutoModelForCausalLM.from_pretrained(tiny_lm_dir, dtype=torch.float32)
    reloaded = PeftModel.from_pretrained(base, train_args.output_dir).eval()
    trained = result.model.eval()
    ids = torch.tensor([list(range(4, 40))])
    with torch.no_grad():
        torch.testing.assert_close(reloaded(input_ids=ids).logits, trained(input_ids=ids).logits, atol=0, rtol=0)


def test_run_folder_holds_adapter_card_recipe_and_metrics(tiny_run):
    from huggingface_hub import ModelCard

    from medsyn.config import load_yaml

    result, (_, _, train_args) = tiny_run
    out = __import__("pathlib").Path(train_args.output_dir)
    for name in ("adapter_config.json", "adapter_model.safetensors", "tokenizer.json", "finetune.yaml", "log.jsonl"):
        assert (out / name).exists(), name
    assert (out / "checkpoints" / "step-000010" / "adapter_model.safetensors").exists()
    assert load_yaml(out / "finetune.yaml")["max_steps"] == 20
    assert json.loads((out / "metrics.json").read_text())["steps"] == 20
    card = ModelCard.load(out / "README.md")
    assert card.data.library_name == "peft" and card.data.base_model
    assert "accelerate launch scripts/finetune.py --max_steps 20" in card.text
    assert "eval_loss_after" in card.text


def test_script_runs_from_a_recipe(tmp_path, tiny_lm_dir, instruction_dir):
    import importlib.util
    from pathlib import Path

    script = Path(__file__).resolve().parents[2] / "scripts" / "finetune.py"
    spec = importlib.util.spec_from_file_location("finetune_script", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert (
        module.__doc__.lstrip().startswith("Fine-tune")
        and "accelerate launch --config_file recipes/accelerate/cpu.yaml scripts/finetune.py" in module.__doc__
    )
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(
        f"# Model\nmodel_name_or_path: {tiny_lm_dir}\nlora_r: 4\n# Data\ndataset: {instruction_dir}\n"
        f"max_seq_length: 128\nmax_eval_samples: 8\n# Training\noutput_dir: {tmp_path / 'out'}\nmax_steps: 2\n"
        "per_device_train_batch_size: 4\nmixed_precision: 'no'\nsave_steps: 0\n"
    )
    assert module.main(["--config", str(recipe), "--learning_rate", "1e-3"]) == 0
    assert (tmp_path / "out" / "adapter_model.safetensors").exists()


@pytest.mark.parametrize("accum", [1, 3])
def test_loss_normalisation_is_per_answer_token(accum, tiny_lm_dir):
    """Summed loss over micro-batches / total tokens equals the mean loss of one packed batch."""
    import torch

    from medsyn.finetune.args import ModelArguments
    from medsyn.finetune.collate import PackedCollator
    from medsyn.finetune.train import load_model_for_training, loss_and_tokens

    model, _ = load_model_for_training(ModelArguments(model_name_or_path=str(tiny_lm_dir), lora_dropout=0.0))
    model.eval()
    examples = [{"input_ids": list(range(5, 5 + n)), "labels": [-100] * 2 + list(range(7, 5 + n))} for n in (6, 9, 4)]
    with torch.no_grad():
        whole, n_whole = loss_and_tokens(model, PackedCollator()(examples))
        parts = [loss_and_tokens(model, PackedCollator()(examples[i::accum])) for i in range(accum)]
    assert n_whole == sum(n for _, n in parts) == 4 + 7 + 2
    torch.testing.assert_close(sum(loss for loss, _ in parts) / n_whole, whole / n_whole)
