"""The ROS-free loops the robot PC's nodes run (safety critic, task policy) and their timing figures.
Nothing here imports ROS, MuJoCo, gymnasium or training code."""
