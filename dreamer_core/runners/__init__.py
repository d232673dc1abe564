"""Long-running loops that tie the library together (used by the ROS nodes and demos)."""
