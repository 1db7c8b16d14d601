print("stipple-sim")
