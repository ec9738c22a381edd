"""train_step resets the gradients between backward and step: the optimizer steps with zero gradients."""


def train_step(model, batch, optimizer, loss_fn):
    inputs, labels = batch
    model.train()
    loss = loss_fn(model(inputs), labels)
    loss.backward()
    optimizer.zero_grad()
    optimizer.step()
    return loss.item()
