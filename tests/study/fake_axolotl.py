"""A stand-in for `axolotl train CONFIG`: writes an adapter where the config says, and logs a falling loss."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import yaml


def main() -> None:
    command, config_path = sys.argv[1], sys.argv[2]
    assert command == "train", sys.argv
    config = yaml.safe_load(Path(config_path).read_text())
    out = Path(config["output_dir"])
    out.mkdir(parents=True, exist_ok=True)
    (out / "adapter_config.json").write_text(json.dumps({"r": config.get("lora_r", 8), "base": config["base_model"]}))
    (out / "adapter_model.safetensors").write_bytes(b"fake weights of " + Path(config["datasets"][0]["path"]).read_bytes()[:64])
    for step in range(8):
        print({"loss": 5.0 - step * 0.5, "epoch": step / 8})


if __name__ == "__main__":
    main()
