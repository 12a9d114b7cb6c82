# source: print(model) of an MLP with a ModuleList, pasted as printed
# input: [3, 10]
# oracle: nn.Sequential(nn.Linear(10, 10), nn.Linear(10, 10), nn.Linear(10, 10), nn.ReLU(), nn.Linear(10, 2))
Net(
  (layers): ModuleList(
    (0-2): 3 x Linear(in_features=10, out_features=10, bias=True)
  )
  (act): ReLU()
  (out): Linear(in_features=10, out_features=2, bias=True)
)
