"""Accounts: profile snapshots, verification requests, holds and restrictions."""
