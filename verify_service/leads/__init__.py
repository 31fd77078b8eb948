"""What leads do on the dashboard: accounts and holds, webhook deliveries, shifts, reviewers, metrics."""
