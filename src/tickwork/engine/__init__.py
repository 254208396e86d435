"""The runtime: task registry, the loop that fires and claims, executors, and the
``Scheduler`` facade that the CLI and the API call."""
