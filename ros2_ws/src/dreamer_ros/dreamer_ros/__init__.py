"""ROS 2 nodes of the Dreamer stack. Nodes stay thin: messages in, dreamer_core calls, messages out."""
