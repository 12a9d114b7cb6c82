# source: d2l.ai 5.2 "Implementation of Multilayer Perceptrons" (concise)
# input: [2, 1, 28, 28]
import torch
from torch import nn

num_inputs, num_outputs, num_hiddens = 784, 10, 256

net = nn.Sequential(nn.Flatten(),
                    nn.Linear(num_inputs, num_hiddens),
                    nn.ReLU(),
                    nn.Linear(num_hiddens, num_outputs))
