"""Call sessions: one Google Meet meeting each, and the outcome a reviewer records."""
