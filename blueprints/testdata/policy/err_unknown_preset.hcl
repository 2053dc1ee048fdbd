policy "x" {
  presets = ["pypi", "pipy", "nmp"]
}

sandbox "s" {
  policy = policy.x
}
