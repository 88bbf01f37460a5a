"""End-to-end recipes on top of the library: pre-training (PASS or DINO),
supervised fine-tuning, cluster-contrast USL/UDA and the embedded demo.
Each recipe is a config dataclass and one function; the CLI's flags are
generated from the configs.
"""
