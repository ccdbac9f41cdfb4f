"""The control layer: robot model (pinocchio), Cartesian impedance law, the policy's action map and the
checks on commands that arrive over the wire. Runs on the robot PC and inside the simulator alike."""
