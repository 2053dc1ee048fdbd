# A blueprint split over files: this one holds the sandbox and agent, the
# policy lives in policy.hcl.json.
sandbox "split" {
  policy = policy.split
}

agent "split" {
  sandbox = sandbox.split
  command = ["sh", "-c", "echo hi"]
}
