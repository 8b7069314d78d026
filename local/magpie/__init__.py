"""The local runtime and the `magpie` command: all of Magpie on one machine, no AWS account."""
