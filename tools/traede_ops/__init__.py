"""The operator CLI `traede-export`: status, replay, re-export, redrive and mapping preview for a deployed stack."""
