print("stipplectl")
