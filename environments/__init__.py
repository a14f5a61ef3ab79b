"""Where endpoints run: the local runtime or an AWS account and region, each an Environment row."""
