"""The hot loop, from camera queues to published results."""
