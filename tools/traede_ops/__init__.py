"""Operator tools, the local sandbox servers and the local runner for traede-export."""
