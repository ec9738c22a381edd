"""train_step never resets the gradients (the defect as released): every step uses the sum of all gradients so far."""


def train_step(model, batch, optimizer, loss_fn):
    inputs, labels = batch
    model.train()
    loss = loss_fn(model(inputs), labels)
    loss.backward()
    optimizer.step()
    return loss.item()
