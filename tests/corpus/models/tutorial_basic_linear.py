# source: the tutorial (torch_layers_tutorial.md), BasicLinear as written
# input: [5, 10]
import torch

torch.manual_seed(42)


class BasicLinear(
    torch.nn.Module
):  # Inherits from nn.Module. Almost everything in PyTorch is a nn.Module
    def __init__(self, input_features, output_features):
        super().__init__()
        self.weights = torch.nn.Parameter(  # defines weights Parameter
            data=torch.randn(
                size=(output_features, input_features)
            ),  # starts with random value
            requires_grad=True,  # activate autograd, which allows us to track and update this parameter during backward pass
        )
        self.bias = torch.nn.Parameter(  # defines bias Parameter, same as above but with different syntax
            torch.randn(
                size=(output_features,), dtype=torch.float32
            ),  # explicitly sets the dtype to float32 (the default)
            requires_grad=True,
        )

    def forward(
        self, x: torch.Tensor
    ) -> torch.Tensor:  # defines the way data will be transformed in the layer or block
        # linear = xA^T + b
        # A^T
        weights = self.weights.t()  # transposes weights tensor
        # x
        input_tensor = x
        # b
        bias = self.bias

        # xA^T
        mul = torch.matmul(
            input_tensor, weights
        )  # calculates tensor dot product between transposed weights and input

        # xA^T + b
        output = mul + bias  # adds offset (bias)

        return output


layer = BasicLinear(input_features=10, output_features=5)
layer
