<?php
function handler($event)
{
    return ['method' => $event['method'], 'name' => $event['query']['name'], 'text' => $event['body']];
}
