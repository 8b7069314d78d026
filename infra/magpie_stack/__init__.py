"""Magpie's CDK stack: the four Chalice apps and everything Chalice cannot declare."""
