"""The ROS 2 layer: thin rclpy adapters around the core (nodes, messages, the embedded runner).

Everything here imports rclpy; nothing outside this package does.
"""
