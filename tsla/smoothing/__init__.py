"""Smoothing over time: θ schedules as pure functions of the epoch, the scheduler that holds θ (and its resumable
state) for any loop, and tsla-auto's switch rules with the object that applies them."""
