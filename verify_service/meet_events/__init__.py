"""Meet in real time: Workspace Events subscriptions per host user, the Pub/Sub push endpoint that
applies their events to attendance at once, and the keeping of the subscriptions
(docs/architecture.md, 'Meet events'; README, 'Real-time attendance')."""
