"""The emulator's one account and default region: every module reads them here."""

ACCOUNT = "123456789012"
REGION = "us-east-1"
