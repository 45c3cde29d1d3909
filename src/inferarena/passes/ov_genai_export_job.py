"""Runs inside the managed optimum-intel environment: `optimum-cli export openvino` with weight
compression. Arguments arrive as JSON on stdin; the last stdout line is the JSON result."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def main() -> None:
    args = json.loads(sys.stdin.read())
    cli = Path(sys.executable).with_name("optimum-cli")
    command = [str(cli), "export", "openvino", "--model", args["model"], "--task", "text-generation-with-past",
               "--weight-format", args["weight_format"]]
    if args["weight_format"] == "int4":
        command += ["--group-size", str(args["group_size"]), "--ratio", str(args["ratio"])]
        if args["sym"]:
            command.append("--sym")
    command.append(args["out"])
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0 or not (Path(args["out"]) / "openvino_model.xml").is_file():
        sys.stderr.write(done.stdout[-3000:] + done.stderr[-3000:])
        raise SystemExit(f"optimum-cli export openvino failed (exit {done.returncode})")
    from importlib.metadata import version

    print(json.dumps({"command": " ".join(command[1:]), "optimum_intel": version("optimum-intel"),
                      "openvino": version("openvino"), "transformers": version("transformers")}))


if __name__ == "__main__":
    main()
