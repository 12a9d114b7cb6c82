# source: the tutorial (torch_layers_tutorial.md), SimpleResidualBlock as written
# input: [5, 10]
import torch

torch.manual_seed(42)


class SimpleResidualBlock(torch.nn.Module):
    def __init__(self, in_features, out_features):
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.fc1 = torch.nn.Linear(in_features=in_features, out_features=out_features)
        self.fc2 = torch.nn.Linear(in_features=out_features, out_features=out_features)
        self.relu = torch.nn.ReLU()
        self.downsample = None

        # allows us to ensure the identity have the same shape
        # as the output
        if in_features != out_features:
            self.downsample = torch.nn.Linear(
                in_features=in_features, out_features=out_features
            )

    def forward(self, x: torch.Tensor):
        identity = x
        out = self.fc1(x)
        out = self.relu(out)
        out = self.fc2(out)

        if self.downsample is not None:
            identity = self.downsample(identity)
        out += identity
        return out


block = SimpleResidualBlock(in_features=10, out_features=20)
