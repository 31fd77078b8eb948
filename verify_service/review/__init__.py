"""The review desk: the queue, claiming calls, recording outcomes with their evidence, second reviews and QA."""
