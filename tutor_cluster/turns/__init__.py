"""The turn service: one tutoring turn (or OpenAI chat request) through edge analysis, learner memory,
retrieval and the router, with no HTTP in it. ``api/`` adapts it to routes."""
