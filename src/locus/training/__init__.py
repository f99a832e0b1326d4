"""Everything that trains: datasets and their encoding, model loading (NF4), the one training loop shared by LoRA and full fine-tuning, checkpoints, snapshots."""
