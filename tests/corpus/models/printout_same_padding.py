# source: print(model) of a Sequential whose convolution uses padding="same", pasted as printed
# input: [1, 3, 16, 16]
# oracle: nn.Sequential(nn.Conv2d(3, 8, 3, padding="same"), nn.ReLU(inplace=True), nn.Conv2d(8, 8, 5, padding="same", padding_mode="reflect"))
Sequential(
  (0): Conv2d(3, 8, kernel_size=(3, 3), stride=(1, 1), padding=same)
  (1): ReLU(inplace=True)
  (2): Conv2d(8, 8, kernel_size=(5, 5), stride=(1, 1), padding=same, padding_mode=reflect)
)
