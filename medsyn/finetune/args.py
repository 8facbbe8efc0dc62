"""Dataclass arguments of the instruction-data builder and of ``scripts/finetune.py``.

Recipes (``recipes/<model>/finetune.yaml``) are flat mappings of these fields; any field can be overridden by a
flag of the same name (see :func:`medsyn.config.parse_args`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from medsyn.errors import ConfigError

__all__ = ["InstructionDataArgs", "ModelArguments", "DataArguments", "TrainArguments", "FINETUNE_ARGS"]


@dataclass
class InstructionDataArgs:
    """Options of ``medsyn data instructions``."""

    out: str = field(default="outputs/instructions", metadata={"help": "dataset folder to write (parquet + card)"})
    splits: list[str] = field(
        default_factory=lambda: ["train", "dev"], metadata={"help": "RuMedTop3 splits to convert (train, dev)"}
    )
    graph: str | None = field(
        default=None, metadata={"help": "knowledge-graph file whose extractor finds symptoms (default location)"}
    )
    seed: int = field(default=0, metadata={"help": "seed of the sampled demographics and continuation cuts"})
    continue_fraction: float = field(
        default=0.3, metadata={"help": "share of notes that also get a «продолжи анамнез» (continue) example"}
    )
    min_output_chars: int = field(
        default=20, metadata={"help": "drop rows whose output (the note, or its rest) is shorter than this"}
    )
    max_notes: int | None = field(default=None, metadata={"help": "use only the first N notes of each split"})
    notes: str | None = field(
        default=None,
        metadata={
            "help": "your own notes instead of RuMedTop3 (a notes source: a .jsonl/.csv/.tsv/.parquet file, a "
            "folder, a Hub id); split into train and dev by --dev_fraction"
        },
    )
    text_column: str | None = field(default=None, metadata={"help": "--notes' text column, when not a usual name"})
    code_column: str | None = field(default=None, metadata={"help": "--notes' ICD-10 column, when not a usual name"})
    dev_fraction: float = field(
        default=0.1, metadata={"help": "with --notes: the share of notes (by a hash of their id) held out as dev"}
    )

    def __post_init__(self) -> None:
        if not 0.0 < self.dev_fraction < 1.0:
            raise ConfigError(f"dev_fraction must be between 0 and 1, got {self.dev_fraction}")
        bad = [s for s in self.splits if s not in ("train", "dev")]
        if bad or not self.splits:
            raise ConfigError(f"splits must be a non-empty subset of ['train', 'dev'], got {self.splits}")
        if not 0.0 <= self.continue_fraction <= 1.0:
            raise ConfigError(f"continue_fraction must be in [0, 1], got {self.continue_fraction}")
        if self.min_output_chars < 1:
            raise ConfigError(f"min_output_chars must be at least 1, got {self.min_output_chars}")


@dataclass
class ModelArguments:
    """The base model and the LoRA adapter put on it."""

    model_name_or_path: str = field(
        default="gemma-3-270m", metadata={"help": "Hub id, local folder, or gemma-3-270m for the embedded default"}
    )
    dtype: str = field(
        default="auto",
        metadata={"help": "weights dtype: auto (bf16 on CUDA, fp32 on CPU), bfloat16, float16 or float32"},
    )
    attn_implementation: str | None = field(
        default=None, metadata={"help": "sdpa, eager or flash_attention_2 (transformers' default when unset)"}
    )
    lora_r: int = field(default=16, metadata={"help": "LoRA rank"})
    lora_alpha: int = field(default=16, metadata={"help": "LoRA alpha (the update is scaled by alpha / r)"})
    lora_dropout: float = field(default=0.05, metadata={"help": "dropout on the LoRA input"})
    lora_target_modules: list[str] = field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"],
        metadata={"help": "module names that get LoRA (attention projections keep the adapter a few MB)"},
    )

    def __post_init__(self) -> None:
        if self.dtype not in ("auto", "bfloat16", "float16", "float32"):
            raise ConfigError(f"dtype must be auto, bfloat16, float16 or float32, got {self.dtype!r}")
        if self.lora_r < 1 or self.lora_alpha < 1:
            raise ConfigError(f"lora_r and lora_alpha must be positive, got r={self.lora_r}, alpha={self.lora_alpha}")
        if not 0.0 <= self.lora_dropout < 1.0:
            raise ConfigError(f"lora_dropout must be in [0, 1), got {self.lora_dropout}")
        if not self.lora_target_modules:
            raise ConfigError("lora_target_modules is empty; name at least one module, e.g. q_proj,v_proj")


@dataclass
class DataArguments:
    """The instruction dataset and how examples are cut."""

    dataset: str = field(
        default="outputs/instructions", metadata={"help": "folder written by 'medsyn data instructions'"}
    )
    train_split: str = field(default="train", metadata={"help": "split to train on"})
    eval_split: str | None = field(default="dev", metadata={"help": "split for the eval loss (none to skip)"})
    max_seq_length: int = field(
        default=256, metadata={"help": "longest example in tokens; longer answers are cut (the prompt is kept)"}
    )
    max_train_samples: int | None = field(default=None, metadata={"help": "use only the first N train rows"})
    max_eval_samples: int | None = field(default=256, metadata={"help": "use only the first N eval rows"})

    def __post_init__(self) -> None:
        if self.max_seq_length < 16:
            raise ConfigError(f"max_seq_length must be at least 16 tokens, got {self.max_seq_length}")


@dataclass
class TrainArguments:
    """The optimisation, logging, saving and publishing options."""

    output_dir: str = field(default="runs/finetune", metadata={"help": "where the adapter, card and logs go"})
    seed: int = field(default=42, metadata={"help": "random seed (set and logged first)"})
    learning_rate: float = field(default=2e-4, metadata={"help": "peak learning rate"})
    lr_scheduler_type: str = field(default="cosine", metadata={"help": "transformers scheduler name"})
    warmup_ratio: float = field(default=0.03, metadata={"help": "share of the steps spent warming up"})
    weight_decay: float = field(default=0.0, metadata={"help": "AdamW weight decay"})
    max_grad_norm: float = field(default=1.0, metadata={"help": "gradient clipping norm (0 to disable)"})
    num_train_epochs: float = field(default=1.0, metadata={"help": "epochs over the train split"})
    max_steps: int = field(default=-1, metadata={"help": "optimizer steps; overrides num_train_epochs when > 0"})
    per_device_train_batch_size: int = field(
        default=8, metadata={"help": "examples per micro-batch, packed into one padding-free row"}
    )
    per_device_eval_batch_size: int = field(default=16, metadata={"help": "examples per eval micro-batch"})
    gradient_accumulation_steps: int = field(default=1, metadata={"help": "micro-batches per optimizer step"})
    mixed_precision: str = field(
        default="auto", metadata={"help": "auto (bf16 on CUDA, none on CPU), bf16, fp16 or no"}
    )
    gradient_checkpointing: bool = field(default=False, metadata={"help": "trade compute for activation memory"})
    num_threads: int | None = field(default=None, metadata={"help": "torch CPU threads (torch's default if unset)"})
    logging_steps: int = field(default=10, metadata={"help": "log the train loss every N optimizer steps"})
    eval_steps: int = field(default=0, metadata={"help": "eval loss every N steps (0: only before and after)"})
    save_steps: int = field(
        default=50,
        metadata={
            "help": "save a resumable checkpoint (adapter, optimizer, scheduler, RNG, data position) every N steps "
            "to output_dir/checkpoints/step-NNNNNN (0: only when stopped early)"
        },
    )
    save_total_limit: int = field(default=3, metadata={"help": "keep only the last N checkpoints (0: keep all)"})
    resume_from_checkpoint: str | None = field(
        default=None,
        metadata={
            "help": "go on from a checkpoint: auto (the latest in output_dir/checkpoints; a fresh start if none) "
            "or a checkpoint folder"
        },
    )
    time_limit_minutes: float | None = field(
        default=None,
        metadata={"help": "stop after this many minutes of training, with a checkpoint to resume from"},
    )
    eval_generate_tasks: int = field(
        default=0, metadata={"help": "dev tasks for prompt following before and after training (0: skip)"}
    )
    push_to_hub: str | None = field(default=None, metadata={"help": "Hub repo id to publish the adapter to"})
    hub_private: bool = field(default=True, metadata={"help": "create the Hub repo as private"})

    def __post_init__(self) -> None:
        if self.learning_rate <= 0:
            raise ConfigError(f"learning_rate must be positive, got {self.learning_rate}")
        if self.per_device_train_batch_size < 1 or self.gradient_accumulation_steps < 1:
            raise ConfigError(
                "per_device_train_batch_size and gradient_accumulation_steps must be at least 1, got "
                f"{self.per_device_train_batch_size} and {self.gradient_accumulation_steps}"
            )
        if self.mixed_precision not in ("auto", "bf16", "fp16", "no"):
            raise ConfigError(f"mixed_precision must be auto, bf16, fp16 or no, got {self.mixed_precision!r}")
        if not 0.0 <= self.warmup_ratio < 1.0:
            raise ConfigError(f"warmup_ratio must be in [0, 1), got {self.warmup_ratio}")
        if self.max_steps <= 0 and self.num_train_epochs <= 0:
            raise ConfigError("give max_steps > 0 or num_train_epochs > 0")
        if self.save_total_limit < 0 or self.save_steps < 0:
            raise ConfigError(
                f"save_steps and save_total_limit must be 0 or more, got {self.save_steps} and {self.save_total_limit}"
            )
        if self.logging_steps < 1:
            raise ConfigError(f"logging_steps must be at least 1, got {self.logging_steps}")


FINETUNE_ARGS = (ModelArguments, DataArguments, TrainArguments)
"""The dataclasses ``scripts/finetune.py`` parses, in order."""
