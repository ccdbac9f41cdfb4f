"""The ROS 2 layer: thin rclpy adapters around the core (nodes, messages, the embedded runner), and
the bringup (``bringup.node_set``: the node set the launch file and ``bresa demo`` both start).

This is the only package that imports rclpy (``bringup`` does not, so the launch file and the
command line can read it anywhere).
"""
